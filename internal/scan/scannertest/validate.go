package scannertest

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// The specification's OpenAPI document, unchanged from the pluggable-scanner-spec
// repository (commit d898c3d).
//
//go:embed scanner-adapter-openapi-v1.2.yaml
var specDoc []byte

// The API's media types are JSON with vendor names the validator does not know.
var registerDecoders = sync.OnceFunc(func() {
	for _, mt := range []string{
		"application/vnd.scanner.adapter.metadata+json", "application/vnd.scanner.adapter.scan.request+json",
		"application/vnd.scanner.adapter.scan.response+json", "application/vnd.scanner.adapter.error+json",
		"application/vnd.scanner.adapter.vuln.report.harbor+json", "application/vnd.security.vulnerability.report",
		"application/vnd.security.sbom.report+json",
	} {
		openapi3filter.RegisterBodyDecoder(mt, openapi3filter.JSONBodyDecoder)
	}
})

type validator struct {
	router routers.Router
}

func newValidator() (*validator, error) {
	registerDecoders()
	doc, err := openapi3.NewLoader().LoadFromData(specDoc)
	if err != nil {
		return nil, fmt.Errorf("scannertest: load the API specification: %w", err)
	}
	// The document's server is relative ("/api/v1"): requests are matched under a fixed
	// host, whatever address the test listens on.
	doc.Servers = openapi3.Servers{{URL: "http://adapter/api/v1"}}
	// The document's examples are strings where objects belong, and one schema spells
	// "description" as "descriptions": flaws of the document, not of the API.
	router, err := legacy.NewRouter(doc, openapi3.DisableExamplesValidation(), openapi3.AllowExtraSiblingFields("descriptions"))
	if err != nil {
		return nil, fmt.Errorf("scannertest: %w", err)
	}
	return &validator{router: router}, nil
}

var validateOptions = &openapi3filter.Options{
	// The adapter's credential check is the server's, not the document's.
	AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	IncludeResponseStatus: true,
}

func (v *validator) input(r *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	u := *r.URL
	u.Scheme, u.Host = "http", "adapter"
	req := r.Clone(context.Background())
	req.URL = &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawQuery: u.RawQuery}
	req.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return nil, fmt.Errorf("no such operation in the specification: %w", err)
	}
	return &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: validateOptions}, nil
}

// request validates an incoming request; the returned input validates its answer.
func (v *validator) request(r *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	in, err := v.input(r, body)
	if err != nil {
		return nil, err
	}
	return in, openapi3filter.ValidateRequest(context.Background(), in)
}

func (v *validator) response(in *openapi3filter.RequestValidationInput, r *http.Request, body []byte, rec *recorder) error {
	in.Request.Body = io.NopCloser(bytes.NewReader(body))
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.status, Header: rec.header,
		Options: validateOptions}
	out.SetBodyBytes(rec.body.Bytes())
	return openapi3filter.ValidateResponse(context.Background(), out)
}
