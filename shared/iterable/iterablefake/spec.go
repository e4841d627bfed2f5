package iterablefake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// SpecRelPath is where Iterable's Swagger file sits relative to the module root: in the
// documents folder beside the checkout, which a user's clone does not have.
const SpecRelPath = "../shared/specs/iterable-api-docs.json"

// FindSpec looks for Iterable's Swagger file relative to the module root above the working
// directory; ok is false when it is absent (tests then skip spec validation).
func FindSpec() (path string, ok bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, filepath.FromSlash(SpecRelPath))
			if _, err := os.Stat(p); err == nil {
				return p, true
			}
			return "", false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// specValidator checks request bodies against the Swagger file, converted to OpenAPI 3.
type specValidator struct {
	doc *openapi3.T
}

func loadSpec(path string) (*specValidator, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("iterablefake: read the spec: %w", err)
	}
	var d2 openapi2.T
	if err := json.Unmarshal(b, &d2); err != nil {
		return nil, fmt.Errorf("iterablefake: parse the spec: %w", err)
	}
	d3, err := openapi2conv.ToV3(&d2)
	if err != nil {
		return nil, fmt.Errorf("iterablefake: convert the spec: %w", err)
	}
	// Requests go to the fake's own address, not to api.iterable.com.
	d3.Servers = nil
	// Iterable's schemas allow extra properties; refusing them here catches a misspelt field
	// name, which Iterable would silently drop. Free-form objects (dataFields) are untouched.
	seen := map[*openapi3.Schema]bool{}
	for _, s := range d3.Components.Schemas {
		closeSchema(s, seen)
	}
	return &specValidator{doc: d3}, nil
}

func closeSchema(ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if ref == nil || ref.Value == nil || seen[ref.Value] {
		return
	}
	s := ref.Value
	seen[s] = true
	if len(s.Properties) > 0 {
		no := false
		s.AdditionalProperties = openapi3.AdditionalProperties{Has: &no}
	}
	for _, p := range s.Properties {
		closeSchema(p, seen)
	}
	closeSchema(s.Items, seen)
}

var errNoOperation = errors.New("the spec has no POST operation at this path")

func (v *specValidator) validate(r *http.Request, path string, raw []byte) error {
	pi := v.doc.Paths.Find(path)
	if pi == nil || pi.Post == nil {
		return errNoOperation
	}
	req := r.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(raw))
	route := &routers.Route{Spec: v.doc, Path: path, PathItem: pi, Method: http.MethodPost, Operation: pi.Post}
	return openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	})
}
