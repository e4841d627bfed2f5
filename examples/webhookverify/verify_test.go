package webhookverify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/examples/webhookverify"
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/deliver/delivertest"
	"github.com/cartrelay/cartrelay/shared/signedhooks"
)

// TestHandlerVerifiesARealRequest: the example takes a request the destination signed (on the
// real clock, as in production), and refuses the same request with its body changed or signed
// with another secret.
func TestHandlerVerifiesARealRequest(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("r", 32)))
	var got []string
	var raw []byte
	var headers http.Header
	h, err := webhookverify.Handler(secret, func(id string, payload []byte) error {
		got = append(got, id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The receiver, behind a recorder of what arrived.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		raw, headers = b.Bytes(), r.Header.Clone()
		r2 := r.Clone(r.Context())
		r2.Body = readCloser{bytes.NewReader(raw)}
		h.ServeHTTP(w, r2)
	}))
	defer srv.Close()

	f := delivertest.Examples(t)[0] // an OrderPlaced of ann@example.com
	acct := accounts.Account{ID: f.Account, Settings: map[string]any{
		"webhooks.enabled": true, "webhooks.endpoints.shop.url": srv.URL, "webhooks.endpoints.shop.secret": accounts.NewSecret(secret)}}
	dest := signedhooks.New(signedhooks.Options{})
	if _, err := dest.Deliver(context.Background(), acct, f); err != nil {
		t.Fatalf("the example refused a request the destination signed: %v", err)
	}
	if len(got) != 1 || got[0] != f.ID {
		t.Fatalf("taken %v, want the fact id %s", got, f.ID)
	}

	// Signed with a secret the receiver does not know: refused, and cartrelay parks it.
	other := "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 32)))
	for name, a := range map[string]accounts.Account{
		"another secret": {ID: f.Account, Settings: map[string]any{"webhooks.endpoints.shop.url": srv.URL, "webhooks.endpoints.shop.secret": accounts.NewSecret(other)}},
	} {
		if _, err := dest.Deliver(context.Background(), a, f); !deliver.IsPermanent(err) {
			t.Errorf("%s: %v, want the 401 taken as permanent", name, err)
		}
	}
	if len(got) != 1 {
		t.Fatalf("taken %v after refusals", got)
	}

	// The real signed request again, with its headers and its body changed: refused.
	if _, err := dest.Deliver(context.Background(), acct, f); err != nil {
		t.Fatal(err)
	}
	signed := headers
	tampered := bytes.Replace(raw, []byte(`"ann@example.com"`), []byte(`"eve@example.com"`), 1)
	if bytes.Equal(tampered, raw) {
		t.Fatal("the payload does not name ann@example.com")
	}
	for name, body := range map[string][]byte{"unchanged": raw, "changed": tampered} {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header = signed.Clone()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		want := http.StatusNoContent
		if name == "changed" {
			want = http.StatusUnauthorized
		}
		if w.Code != want {
			t.Errorf("the signed request with its body %s: %d, want %d", name, w.Code, want)
		}
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
