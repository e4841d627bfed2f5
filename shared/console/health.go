package console

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// What the home page and the lists say about the health of an account: how its destinations
// are doing, what failed and still waits for a replay, and the queues.

// destLabel is how pages name a destination: its registered label, else the name as logged.
func destLabel(dest string) string {
	if r, err := destinations.Lookup(dest); err == nil {
		return r.Label
	}
	return dest
}

// destHealth is one destination's state for an account.
type destHealth struct {
	Dest, Label     string
	Enabled, KeySet bool
	// LastOK and LastFail are the newest delivered and the newest failed attempt seen.
	LastOK, LastFail *history.Delivery
}

// Failing reports whether the newest attempt seen failed.
func (h destHealth) Failing() bool {
	return h.LastFail != nil && (h.LastOK == nil || h.LastFail.At.After(h.LastOK.At))
}

// healthScan bounds how far back the home page looks for each destination's last success.
const healthScan = 300

func (p *pageCtx) destHealth(acct accounts.Account) ([]destHealth, error) {
	var out []destHealth
	for _, r := range destinations.All() {
		out = append(out, destHealth{Dest: r.Name, Label: r.Label, Enabled: r.Enabled(acct), KeySet: r.KeySet(acct)})
	}
	all, err := p.c.history.DeliveryLog(p.ctx, p.sess.Account, history.DeliveryQuery{Limit: healthScan, MaxScan: healthScan})
	if err != nil {
		return nil, err
	}
	failed, err := p.c.history.DeliveryLog(p.ctx, p.sess.Account, history.DeliveryQuery{Failed: true, Limit: 50, MaxScan: 50})
	if err != nil {
		return nil, err
	}
	for i := range out {
		h := &out[i]
		for j := range all.Deliveries {
			d := &all.Deliveries[j]
			if d.Dest == h.Dest && (d.Status == history.DeliverySent || d.Status == history.DeliveryDryRun) {
				h.LastOK = d
				break
			}
		}
		for j := range failed.Deliveries {
			if d := &failed.Deliveries[j]; d.Dest == h.Dest {
				h.LastFail = d
				break
			}
		}
	}
	return out, nil
}

// openFailure is a fact whose latest attempt at a destination failed and that has not been
// delivered since: what a replay would send.
type openFailure struct {
	history.Delivery
}

// failureScan bounds the failed attempts the home page and the deliveries page look at.
const failureScan = 500

// openFailures lists the facts still failing (newest attempt first), reading at most
// failureScan failed attempts; more is true when there may be others beyond them.
func (p *pageCtx) openFailures() (list []openFailure, more bool, err error) {
	pg, err := p.c.history.DeliveryLog(p.ctx, p.sess.Account, history.DeliveryQuery{Failed: true, Limit: failureScan, MaxScan: failureScan})
	if err != nil {
		return nil, false, err
	}
	type key struct{ dest, fact string }
	seen := map[key]bool{}
	var latest []history.Delivery
	for _, d := range pg.Deliveries {
		k := key{d.Dest, d.FactID}
		if seen[k] {
			continue
		}
		seen[k] = true
		latest = append(latest, d)
	}
	done := make([]bool, len(latest))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 8)
	for i, d := range latest {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rec, err := p.c.history.FactDone(p.ctx, p.sess.Account, d.Dest, d.FactID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			done[i] = rec != nil
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, false, firstErr
	}
	for i, d := range latest {
		if !done[i] {
			list = append(list, openFailure{d})
		}
	}
	return list, pg.Next != "", nil
}

// advice says what to do about a failed attempt, in a merchant's words.
func advice(d history.Delivery) string {
	if d.Status == history.DeliveryRetry {
		return "cartrelay retries this by itself, waiting longer each time; nothing to do unless it keeps failing."
	}
	status := 0
	if n := len(d.Requests); n > 0 {
		status = d.Requests[n-1].Status
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return destLabel(d.Dest) + " refused the API key. Check the key in Settings (it is checked before it is saved), then replay."
	case status >= 400 && status < 500:
		return destLabel(d.Dest) + " refused this request; its answer below says why. Fix the cause (the setting or the contact's data it names), then replay."
	case strings.Contains(d.Error, "https"):
		return "The destination's address is not usable (" + d.Error + "). Correct it in the account settings, then replay."
	}
	return "Fix the cause the error names, then replay: the replay sends exactly this again."
}

// queueRow is one queue on the home page.
type queueRow struct {
	queue.Stats
	Oldest    time.Time
	OldestErr bool
	Err       bool
}

// queueRows reads every queue's counts (and, where the queue can tell, its oldest waiting
// message's age) at once.
func (p *pageCtx) queueRows() []queueRow {
	names := destinations.Queues().Names()
	rows := make([]queueRow, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := queueRow{Stats: queue.Stats{Queue: name}}
			st, err := p.c.d.Queue.Stats(p.ctx, name)
			if err != nil {
				p.log.Warn("console: queue stats unreadable", slog.String("queue", name), slog.Any("error", err))
				r.Err = true
			} else {
				r.Stats = st
				r.Stats.Queue = name
			}
			if ager, ok := p.c.d.Queue.(queue.Ager); ok && !r.Err && r.Visible+r.Delayed > 0 {
				at, ok, err := ager.OldestWaiting(p.ctx, name)
				switch {
				case err != nil:
					r.OldestErr = true
				case ok:
					r.Oldest = at
				}
			}
			rows[i] = r
		}()
	}
	wg.Wait()
	return rows
}

// errNoQueue is returned where a page needs the queues and this runtime gave the console none.
var errNoQueue = errors.New("this cartrelay gave the console no access to its queues")
