package source

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/cartrelay/cartrelay/shared/accounts"
)

// Webhook is how a source's webhook deliveries are authenticated and split.
type Webhook struct {
	// Secrets are the account's sealed fields Authenticate compares: the webhook opens only
	// these, per request (accounts.Repo.Get), and holds no other secret.
	Secrets []accounts.Field
	// Probes are the methods a source checks a webhook URL with before saving it; they are
	// answered 200 at once.
	Probes []string
	// Allow is the Allow header of the answer to any other method than POST or a probe.
	Allow string
	// CredentialInBody says the credential travels in the body, so a body that cannot be read
	// proves nothing and gets the Denied answer, like a wrong credential.
	CredentialInBody bool
	// Denied is the one answer to every delivery that does not prove it knows the account's
	// credential, an unknown account included, so answers do not tell which accounts exist.
	Denied Answer
	// Authenticate reports nil when d proves it knows acct's credential (opened from Secrets),
	// comparing in constant time; otherwise why not, for the log (never a secret). It runs
	// before anything decodes the body.
	Authenticate func(acct accounts.Account, d Delivery) error
	// Split decodes an authenticated delivery into single events. An error that is an *Answer
	// is answered as it is; any other is a 400 carrying the error's text.
	Split func(d Delivery) ([]Event, error)
}

// Delivery is one webhook request as it reached cartrelay.
type Delivery struct {
	Account string
	Method  string
	// Header reads a request header, whatever its case.
	Header func(name string) string
	// Body is the request body, size-capped and base64-decoded; nil when Unreadable is set.
	Body []byte
	// Unreadable is the answer to a body that could not be read (over the size cap, marked
	// base64 but not, empty).
	Unreadable *Answer
}

// Answer is a webhook answer other than an accepted delivery.
type Answer struct {
	Status int
	// Message is the error the sender is told; empty for a bare answer (a probe).
	Message string
	Header  map[string]string
	// Reason is what the log says about it (never a secret).
	Reason string
}

func (a *Answer) Error() string { return a.Message }

// Accounts opens accounts with the named secret fields (accounts.Repo.Get).
type Accounts interface {
	Get(ctx context.Context, id string, open ...accounts.Field) (accounts.Account, error)
}

// Receive runs reg's webhook over d: it answers a probe or a wrong method, opens the account's
// credential, authenticates, and only then splits the body. It returns the events, or the
// answer when the delivery is not accepted. It writes nothing: acknowledging the events after a
// durable write is the caller's.
func Receive(ctx context.Context, reg Registration, accts Accounts, d Delivery) ([]Event, *Answer) {
	w := reg.Webhook
	switch {
	case slices.Contains(w.Probes, d.Method):
		return nil, &Answer{Status: http.StatusOK, Reason: "probe"}
	case d.Method != http.MethodPost:
		allow := w.Allow
		if allow == "" {
			allow = http.MethodPost
		}
		return nil, &Answer{Status: http.StatusMethodNotAllowed, Message: "use " + allow, Header: map[string]string{"allow": allow},
			Reason: "method " + d.Method}
	}
	if w.CredentialInBody && d.Unreadable != nil {
		return nil, denied(w, "body unreadable before authentication: "+d.Unreadable.Message)
	}
	acct, err := accts.Get(ctx, d.Account, w.Secrets...)
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		return nil, denied(w, "unknown account")
	case err != nil:
		return nil, &Answer{Status: http.StatusServiceUnavailable, Reason: "read the account: " + err.Error(),
			Message: "cannot read the account settings right now; the delivery will be retried"}
	}
	if err := w.Authenticate(acct, d); err != nil {
		return nil, denied(w, err.Error())
	}
	if d.Unreadable != nil {
		return nil, d.Unreadable
	}
	evs, err := w.Split(d)
	if err != nil {
		var a *Answer
		if errors.As(err, &a) {
			return nil, a
		}
		return nil, &Answer{Status: http.StatusBadRequest, Message: err.Error(), Reason: "malformed delivery: " + err.Error()}
	}
	return evs, nil
}

func denied(w Webhook, reason string) *Answer {
	a := w.Denied
	a.Header = cloneHeader(a.Header)
	a.Reason = reason
	return &a
}

func cloneHeader(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = v
	}
	return out
}
