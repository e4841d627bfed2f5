// Package hookfake is a webhook receiver as the Standard Webhooks specification describes one,
// for tests: it verifies every request's signature with the specification's own library and
// refuses one that does not verify (401), checks the timestamp against its clock within the
// specification's five minutes, and takes each webhook-id once (a repeat is answered 200 and
// not taken again, as the specification advises receivers). Failures can be injected.
package hookfake

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/cartrelay/cartrelay/shared/clock"
)

// Tolerance is how far a webhook-timestamp may be from the receiver's clock.
const Tolerance = 5 * time.Minute

// Request is one request the receiver got.
type Request struct {
	ID, Timestamp, Signature string
	Body                     []byte
	// Verified: the signature matched one of the receiver's secrets and the timestamp was
	// within Tolerance.
	Verified bool
}

// Fault answers the next Times requests (0: every request until cleared) with Status.
type Fault struct {
	Status     int
	RetryAfter string
	Times      int
}

// Options configure a receiver.
type Options struct {
	// Secrets the receiver verifies with; a request verifies when any of them matches.
	Secrets []string
	Clock   clock.Clock
	// Chaos, when set, is asked about every request that verifies: a non-zero status fails it,
	// before the receiver takes it or, with taken, after (the receiver kept the fact but the
	// answer says it failed, as a receiver that times out answering does).
	Chaos func() (status int, taken bool)
}

// Receiver is a running fake receiver.
type Receiver struct {
	*httptest.Server
	clk   clock.Clock
	hooks []*standardwebhooks.Webhook
	chaos func() (int, bool)

	mu       sync.Mutex
	requests []Request
	taken    map[string][]byte
	order    []string
	faults   []Fault
}

// New starts a receiver; Close stops it.
func New(o Options) (*Receiver, error) {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	r := &Receiver{clk: o.Clock, taken: map[string][]byte{}, chaos: o.Chaos}
	for _, s := range o.Secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			return nil, err
		}
		r.hooks = append(r.hooks, wh)
	}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	return r, nil
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil || req.Method != http.MethodPost {
		http.Error(w, "POST a JSON body", http.StatusBadRequest)
		return
	}
	in := Request{ID: req.Header.Get(standardwebhooks.HeaderWebhookID), Timestamp: req.Header.Get(standardwebhooks.HeaderWebhookTimestamp),
		Signature: req.Header.Get(standardwebhooks.HeaderWebhookSignature), Body: body}
	in.Verified = r.verify(body, req.Header)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, in)
	if len(r.faults) > 0 {
		f := r.faults[0]
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				r.faults = r.faults[1:]
			} else {
				r.faults[0] = f
			}
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		http.Error(w, "injected failure", f.Status)
		return
	}
	if !in.Verified {
		http.Error(w, "signature does not verify", http.StatusUnauthorized)
		return
	}
	status, taken := 0, true
	if r.chaos != nil {
		status, taken = r.chaos()
	}
	if status == 0 || taken {
		if _, ok := r.taken[in.ID]; !ok {
			r.taken[in.ID] = body
			r.order = append(r.order, in.ID)
		}
	}
	if status != 0 {
		http.Error(w, "chaos", status)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// verify checks the signature with the library, and the timestamp against the receiver's clock
// (the library's own check reads the machine's).
func (r *Receiver) verify(body []byte, h http.Header) bool {
	ts, err := strconv.ParseInt(h.Get(standardwebhooks.HeaderWebhookTimestamp), 10, 64)
	if err != nil {
		return false
	}
	if d := r.clk.Now().Sub(time.Unix(ts, 0)); d > Tolerance || d < -Tolerance {
		return false
	}
	for _, wh := range r.hooks {
		if wh.VerifyIgnoringTimestamp(body, h) == nil {
			return true
		}
	}
	return false
}

// Inject queues a fault.
func (r *Receiver) Inject(f Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, f)
}

// Clear drops the queued faults.
func (r *Receiver) Clear() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = nil
}

// Requests are every request received, in order.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// Held is how many times the receiver took webhook-id id: 0 or 1.
func (r *Receiver) Held(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.taken[id]; ok {
		return 1
	}
	return 0
}

// Taken lists the webhook-ids taken, in the order they were first taken, with their bodies.
func (r *Receiver) Taken() (ids []string, bodies [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range r.order {
		ids = append(ids, id)
		bodies = append(bodies, r.taken[id])
	}
	return ids, bodies
}

// Signatures splits a webhook-signature header into its entries.
func Signatures(h string) []string { return strings.Fields(h) }
