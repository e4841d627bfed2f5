package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/redact"
)

// TestPagesDoNotQuoteSecrets: a connect page shows what UltraCart answered when registering the
// webhook failed; an answer that quotes a secret this process holds (here the client secret)
// must not carry it to the browser.
func TestPagesDoNotQuoteSecrets(t *testing.T) {
	f := newOAuthFixture(t, "")
	f.fake.FailWebhookWrites("client c-secret may not manage webhooks")
	resp := f.finish(f.start())
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("%d: %s", resp.StatusCode, resp.Body)
	}
	if strings.Contains(resp.Body, "c-secret") || !strings.Contains(resp.Body, "client "+redact.Mark+" may not manage webhooks") {
		t.Errorf("the page quotes the client secret, or lost the rest of the answer:\n%s", resp.Body)
	}
}
