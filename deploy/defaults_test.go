package deploy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
)

// recordingTransport answers every request with 200 and remembers its URL, so a client can
// be pointed at a real vendor's address without leaving the machine.
type recordingTransport struct{ urls []string }

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.urls = append(rt.urls, req.URL.String())
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

// TestThriveCartBaseUrlDefault: a stack deployed with the defaults calls ThriveCart's API at
// https://thrivecart.com/api/external/..., through the functions that talk to ThriveCart.
func TestThriveCartBaseUrlDefault(t *testing.T) {
	tpl := loadTemplate(t)
	def := scalar(get(tpl.root, "Parameters", "ThriveCartBaseUrl", "Default"))
	if def == "" {
		t.Fatal("ThriveCartBaseUrl has no default")
	}
	for _, fn := range []string{"PollFunction", "ConnectFunction"} {
		if got := ref(tpl.env(fn)["THRIVECART_BASE_URL"]); got != "ThriveCartBaseUrl" {
			t.Errorf("%s: THRIVECART_BASE_URL is %q, want !Ref ThriveCartBaseUrl", fn, got)
		}
	}
	rt := &recordingTransport{}
	c := thrivecartapi.Client{BaseURL: def, HTTP: &http.Client{Transport: rt}}
	if _, err := c.Ping(context.Background(), "key"); err != nil {
		t.Fatal(err)
	}
	if want := "https://thrivecart.com/api/external/ping"; len(rt.urls) != 1 || rt.urls[0] != want {
		t.Errorf("with the default ThriveCartBaseUrl %q the client called %v, want %s", def, rt.urls, want)
	}
}
