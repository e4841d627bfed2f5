// Package webhookverify is how a receiver checks cartrelay's signed webhooks (docs/webhooks.md),
// with the Standard Webhooks library: copy Handler into your service.
package webhookverify

import (
	"io"
	"net/http"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Handler verifies each request with secret (the endpoint's "whsec_..."; during a rotation
// either secret verifies) and hands the payload to take. Keep the webhook-id: a fact delivered
// again has the same one. An error from take makes cartrelay retry.
func Handler(secret string, take func(id string, payload []byte) error) (http.Handler, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil || wh.Verify(body, r.Header) != nil { // also refuses a timestamp over 5 minutes off
			http.Error(w, "signature does not verify", http.StatusUnauthorized)
			return
		}
		if err := take(r.Header.Get(standardwebhooks.HeaderWebhookID), body); err != nil {
			http.Error(w, "not taken, try again", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}), nil
}
