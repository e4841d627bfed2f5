package wiring

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReportInitError holds the report to the Runtime API's init/error call: the path, the
// error type header and the JSON body Lambda hands to the invoker.
func TestReportInitError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		wantErr string
	}{
		{name: "accepted", status: http.StatusAccepted},
		{name: "refused", status: http.StatusForbidden, wantErr: "it answered 403 Forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got struct {
				method, path, errType string
				body                  map[string]any
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.method, got.path, got.errType = r.Method, r.URL.Path, r.Header.Get("Lambda-Runtime-Function-Error-Type")
				raw, _ := io.ReadAll(r.Body)
				if err := json.Unmarshal(raw, &got.body); err != nil {
					t.Errorf("body %q is not JSON: %v", raw, err)
				}
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			cause := errors.New("connect: CONSOLE_SESSION_KEY: SSM parameter /x does not exist")
			err := reportInitError(context.Background(), srv.Client(), strings.TrimPrefix(srv.URL, "http://"), cause)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("reportInitError = %v, want %q", err, tc.wantErr)
			}
			if got.method != http.MethodPost || got.path != "/2018-06-01/runtime/init/error" || got.errType != "Runtime.InitError" {
				t.Errorf("request %s %s with error type %q, want POST /2018-06-01/runtime/init/error with Runtime.InitError", got.method, got.path, got.errType)
			}
			if got.body["errorMessage"] != cause.Error() || got.body["errorType"] != "Runtime.InitError" {
				t.Errorf("body %v, want the cause as errorMessage and Runtime.InitError as errorType", got.body)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		addr := strings.TrimPrefix(srv.URL, "http://")
		srv.Close()
		if err := reportInitError(context.Background(), http.DefaultClient, addr, errors.New("x")); err == nil {
			t.Fatal("no error when the Runtime API is not there")
		}
	})
}
