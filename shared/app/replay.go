package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/store"
)

// ReplayAttribute marks a message that `deliveries replay` queued again.
const ReplayAttribute = "replay"

// Replayed is the outcome of replaying one failed delivery: its fact was queued for its
// destination again, or Error says why not.
type Replayed struct {
	FactID      string `json:"fact_id"`
	FactKind    string `json:"fact_kind"`
	Email       string `json:"email"`
	Destination string `json:"destination"`
	Error       string `json:"error,omitempty"`
}

// ReplayError is returned beside the outcomes when some deliveries could not be replayed; the
// others were.
type ReplayError struct {
	Account string
	Failed  int
	Total   int
}

func (e *ReplayError) Error() string {
	return fmt.Sprintf("%d of %d failed deliveries of %s could not be replayed (the others were queued again); each one's error is in its line of the output",
		e.Failed, e.Total, e.Account)
}

// ReplayDeliveries sends failed deliveries of an account to their destination queues again:
// every fact whose latest attempt failed and that has not been delivered since, or only the
// fact factID when it is set. The forwarder's fact-done marker makes a replay of a fact that
// did get through a no-op.
//
// Each delivery is replayed on its own: one that cannot be (its fact is nowhere to be found, the
// queue refuses it) is reported with its reason and does not stop the others. The outcomes come
// back in any case; the error is a *ReplayError when some failed, or the reason none could be
// looked at.
func (a *App) ReplayDeliveries(ctx context.Context, account, factID string) ([]Replayed, error) {
	return a.replayFailed(ctx, account, "", factID)
}

// ReplayDestination is ReplayDeliveries for the failed deliveries to one destination only.
func (a *App) ReplayDestination(ctx context.Context, account, dest string) ([]Replayed, error) {
	return a.replayFailed(ctx, account, dest, "")
}

func (a *App) replayFailed(ctx context.Context, account, dest, factID string) ([]Replayed, error) {
	repo := history.New(a.d.Store)
	failed, err := repo.Deliveries(ctx, account, true, 0)
	if err != nil {
		return nil, fmt.Errorf("list the failed deliveries of %s: %w", account, err)
	}
	type key struct{ dest, fact string }
	seen := map[key]bool{}
	var out []Replayed
	bad := 0
	for _, d := range failed {
		k := key{d.Dest, d.FactID}
		if seen[k] || (factID != "" && d.FactID != factID) || (dest != "" && d.Dest != dest) {
			continue
		}
		seen[k] = true
		r, sent, err := a.replayOne(ctx, repo, d)
		if err != nil {
			r.Error = err.Error()
			bad++
		}
		if sent || err != nil {
			out = append(out, r)
		}
	}
	if factID != "" && len(out) == 0 {
		return nil, fmt.Errorf("no failed, undelivered fact %s in account %s ('cartrelay deliveries list %s --failed' lists them)", factID, account, account)
	}
	if bad > 0 {
		return out, &ReplayError{Account: account, Failed: bad, Total: len(out)}
	}
	return out, nil
}

// ReplayFact replays the failed delivery of one fact to one destination: the newest attempt in
// the contact's delivery log (the replay of ReplayDeliveries, for a fact named by a page rather
// than found in the account's whole failed index). A fact delivered since is not sent again.
func (a *App) ReplayFact(ctx context.Context, account, email, dest, factID string) (Replayed, error) {
	repo := history.New(a.d.Store)
	attempts, err := repo.ContactDeliveries(ctx, account, email, dest, factID)
	if err != nil {
		return Replayed{}, err
	}
	if len(attempts) == 0 {
		return Replayed{}, fmt.Errorf("no delivery of fact %s to %s for %s in account %s", factID, dest, email, account)
	}
	r, _, err := a.replayOne(ctx, repo, attempts[0])
	return r, err
}

// ReplayQuarantined sends a kept-raw event to ingest again, exactly as it was received, and
// marks it replayed. Ingest quarantines it again, with the new reason, if it still cannot be used.
func (a *App) ReplayQuarantined(ctx context.Context, q history.Quarantined) error {
	msg := queue.Message{Body: q.Message, Attributes: map[string]string{"account": q.Account, "replay_of": q.ID}}
	if err := a.d.Queue.Send(ctx, queue.Ingest, []queue.Message{msg}); err != nil {
		return fmt.Errorf("replay quarantined event %s: %w", q.ID, err)
	}
	return history.New(a.d.Store).QuarantineMarkReplayed(ctx, q, a.d.Clock.Now())
}

// consoleActions is what the console may ask of the app.
type consoleActions struct{ a *App }

func (c consoleActions) ReplayDelivery(ctx context.Context, account, email, dest, factID string) error {
	_, err := c.a.ReplayFact(ctx, account, email, dest, factID)
	return err
}

func (c consoleActions) ReplayDestination(ctx context.Context, account, dest string) (queued, failed int, err error) {
	out, err := c.a.ReplayDestination(ctx, account, dest)
	for _, r := range out {
		if r.Error != "" {
			failed++
		} else {
			queued++
		}
	}
	var partial *ReplayError
	if errors.As(err, &partial) {
		err = nil
	}
	return queued, failed, err
}

func (c consoleActions) ReplayQuarantined(ctx context.Context, account, id string) error {
	q, err := history.New(c.a.d.Store).QuarantineGet(ctx, account, id)
	if err != nil {
		return err
	}
	return c.a.ReplayQuarantined(ctx, q)
}

func (c consoleActions) ShowEvent(ctx context.Context, message string) (json.RawMessage, error) {
	se, err := DecodeSourceEvent(ctx, c.a.d.Store, message)
	if err != nil {
		return nil, err
	}
	return json.Marshal(se)
}

// replayOne queues the fact of one failed delivery again, unless it has been delivered since
// (sent false, no error).
func (a *App) replayOne(ctx context.Context, repo *history.Repo, d history.Delivery) (r Replayed, sent bool, err error) {
	r = Replayed{FactID: d.FactID, FactKind: d.FactKind, Email: d.Email, Destination: d.Dest}
	done, err := repo.FactDone(ctx, d.Account, d.Dest, d.FactID)
	if err != nil {
		return r, false, err
	}
	if done != nil {
		return r, false, nil
	}
	body, f, err := a.failedFact(ctx, repo, d)
	if err != nil {
		return r, false, err
	}
	// Start the count of failures over: the cause is meant to be fixed, and a fact that had
	// used up its failures would otherwise be parked again at its first.
	kept := history.FailedFact{FirstFailedAt: a.d.Clock.Now(), Fact: body}
	if err := repo.KeepFailedFact(ctx, d.Account, f.Email, d.Dest, f.ID, kept, a.d.Clock.Now().Add(DeliveryLogTTL)); err != nil {
		return r, false, err
	}
	// A new deduplication id: the original may still be inside the FIFO queue's window.
	dedup := "r" + strconv.FormatInt(a.d.Clock.Now().UnixNano(), 36) + "~" + f.ID
	if len(dedup) > 128 {
		dedup = dedup[:128]
	}
	msg := queue.Message{Body: string(body), GroupID: d.Account + "|" + f.Email, DedupID: dedup,
		Attributes: map[string]string{"account": d.Account, "fact_kind": string(f.Kind), ReplayAttribute: "true"}}
	if err := a.d.Queue.Send(ctx, d.Dest, []queue.Message{msg}); err != nil {
		return r, false, fmt.Errorf("queue it for %s: %w", d.Dest, err)
	}
	return r, true, nil
}

// failedFact finds the fact of a failed delivery: the copy the forwarder kept with it, or,
// for a delivery recorded before failed facts were kept, the contact's fact log. Follow-up
// facts (cart reminders, review requests, page-view batches) are only ever in the kept copy.
func (a *App) failedFact(ctx context.Context, repo *history.Repo, d history.Delivery) (json.RawMessage, domain.Fact, error) {
	kept, err := repo.FailedFactOf(ctx, d.Account, d.Email, d.Dest, d.FactID)
	if err != nil {
		return nil, domain.Fact{}, err
	}
	if kept != nil && len(kept.Fact) > 0 {
		var f domain.Fact
		if err := json.Unmarshal(kept.Fact, &f); err != nil || f.ID != d.FactID {
			return nil, domain.Fact{}, fmt.Errorf("the copy of the fact kept with the delivery is unreadable: %v", err)
		}
		return kept.Fact, f, nil
	}
	f, err := repo.Fact(ctx, d.Account, d.Email, d.FactID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, domain.Fact{}, fmt.Errorf("the fact is neither in a copy kept with its failed delivery nor in %s's fact log: "+
			"deliveries that failed before cartrelay kept such copies have none, and follow-ups (cart reminders, review requests, "+
			"page-view batches) are never in the fact log; it cannot be sent again, and the contact's next cart, shipment or page view "+
			"brings a new follow-up", d.Email)
	}
	if err != nil {
		return nil, domain.Fact{}, err
	}
	body, err := json.Marshal(f)
	if err != nil {
		return nil, domain.Fact{}, err
	}
	return body, f, nil
}
