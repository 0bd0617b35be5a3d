package adminapi

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3 description of every route, written by hand; a test
// keeps it and the route table in step.
//
//go:embed openapi.json
var openAPIDoc []byte

func (a *API) openAPI(w http.ResponseWriter, r *http.Request, _ *caller) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPIDoc)
	return err
}
