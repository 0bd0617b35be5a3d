// Package eventstest checks webhook payloads against the JSON schemas of their formats
// (CloudEvents 1.0 structured JSON, Harbor's webhook payload), for package events' tests
// and the end-to-end receiver.
package eventstest

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	//go:embed cloudevents.schema.json
	cloudEventsSchema []byte
	//go:embed harbor.schema.json
	harborSchema []byte
)

var (
	once    sync.Once
	schemas map[string]*jsonschema.Schema
	initErr error
)

func compile() {
	schemas = map[string]*jsonschema.Schema{}
	for name, doc := range map[string][]byte{"cloudevents": cloudEventsSchema, "harbor": harborSchema} {
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
		if err != nil {
			initErr = fmt.Errorf("%s schema: %w", name, err)
			return
		}
		url := "mem:///" + name + ".json"
		if err := c.AddResource(url, v); err != nil {
			initErr = err
			return
		}
		if schemas[name], err = c.Compile(url); err != nil {
			initErr = fmt.Errorf("%s schema: %w", name, err)
			return
		}
	}
}

// Validate checks body against the schema of format ("cloudevents" or "harbor").
func Validate(format string, body []byte) error {
	once.Do(compile)
	if initErr != nil {
		return initErr
	}
	s, ok := schemas[format]
	if !ok {
		return fmt.Errorf("no schema for format %q", format)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(v)
}
