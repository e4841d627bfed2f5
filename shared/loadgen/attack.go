package loadgen

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Load is one stream of deliveries to a serve.
type Load struct {
	// URL is serve's base URL ("http://127.0.0.1:8080").
	URL string
	// Run tells this run's orders from other runs' in the same data directory.
	Run string
	// First is the number of the first order (a second stream continues the numbering).
	First uint64
	// Rate is deliveries a second, sent whatever the answers (an open loop, like a store's
	// customers); 0 sends as fast as Workers senders can, each waiting for its answer.
	Rate int
	// Workers is the number of senders for Rate 0 (default 32). At a fixed rate more are
	// started whenever every one is waiting for an answer.
	Workers int
	// Duration is how long to send.
	Duration time.Duration
	// Timeout bounds one request (default 30 s, UltraCart's own).
	Timeout time.Duration
}

// Answer is the outcome of one delivery.
type Answer struct {
	// N is the order's number (OrderID(run, N)).
	N uint64
	// Sent is when the request started; Took how long until its answer.
	Sent time.Time
	Took time.Duration
	// Placed is the order's time in the delivery (whole seconds, as UltraCart sends it), which
	// with N gives back the body sent (Delivery).
	Placed time.Time
	// Code is the HTTP status, 0 when there was no answer (Err says why).
	Code int
	Err  string
}

// Accepted reports whether the delivery was answered 200: durably queued.
func (a Answer) Accepted() bool { return a.Code == http.StatusOK }

// Post sends l and calls each with every answer, from one goroutine, as answers come. It
// returns when the last answer is in; stop ends the stream early.
func Post(l Load, stop <-chan struct{}, each func(Answer)) {
	if l.Workers <= 0 {
		l.Workers = 32
	}
	if l.Timeout <= 0 {
		l.Timeout = 30 * time.Second
	}
	hdr := http.Header{
		"Content-Type":  {"application/json"},
		"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(WebhookUser+":"+WebhookPassword))},
		"User-Agent":    {"UltraCart Webhook"},
	}
	target := l.URL + "/webhooks/ultracart/" + Account
	var n atomic.Uint64
	n.Store(l.First)
	tr := func(t *vegeta.Target) error {
		i := n.Add(1) - 1
		t.Method = http.MethodPost
		// The number and the order's time ride in the query string, so each answer can be
		// matched to its order and its body; the webhook ignores the query.
		placed := time.Now().Unix()
		t.URL = target + "?n=" + strconv.FormatUint(i, 10) + "&placed=" + strconv.FormatInt(placed, 10)
		t.Header = hdr
		t.Body = Delivery(OrderID(l.Run, i), Email(l.Run, i), time.Unix(placed, 0))
		return nil
	}
	opts := []func(*vegeta.Attacker){
		vegeta.Timeout(l.Timeout), vegeta.KeepAlive(true), vegeta.Connections(10000),
		vegeta.MaxBody(4 << 10), vegeta.Redirects(vegeta.NoFollow),
	}
	pacer := vegeta.Rate{Freq: l.Rate, Per: time.Second}
	if l.Rate == 0 {
		opts = append(opts, vegeta.Workers(uint64(l.Workers)), vegeta.MaxWorkers(uint64(l.Workers)))
	} else {
		opts = append(opts, vegeta.Workers(uint64(l.Workers)))
	}
	atk := vegeta.NewAttacker(opts...)
	results := atk.Attack(tr, pacer, l.Duration, "cartrelay")
	for {
		select {
		case r, ok := <-results:
			if !ok {
				return
			}
			each(answerOf(r))
		case <-stop:
			atk.Stop()
			stop = nil
		}
	}
}

func answerOf(r *vegeta.Result) Answer {
	a := Answer{Sent: r.Timestamp, Took: r.Latency, Code: int(r.Code), Err: r.Error}
	if i := strings.LastIndex(r.URL, "?"); i >= 0 {
		q, _ := url.ParseQuery(r.URL[i+1:])
		a.N, _ = strconv.ParseUint(q.Get("n"), 10, 64)
		if sec, err := strconv.ParseInt(q.Get("placed"), 10, 64); err == nil {
			a.Placed = time.Unix(sec, 0)
		}
	}
	return a
}
