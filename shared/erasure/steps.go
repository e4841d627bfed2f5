package erasure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/store"
)

// stepRecords is how many records one step moves or deletes: two writes each at most, with room
// in the transaction for the job, the pseudonym's profile and the reports' writes.
const stepRecords = 20

// maxSteps bounds one call's work; the schedule's next runs go on.
const maxSteps = 500

// maxConflicts is how many lost races in a row one call accepts before leaving the job to the
// next run of the schedule.
const maxConflicts = 3

// Continue carries the erasure on as far as it can now: the records, the requests to the
// destinations, and the end once they are settled. done reports that the erasure is complete.
func (e *Eraser) Continue(ctx context.Context, acct accounts.Account, job *history.ErasureJob) (done bool, err error) {
	if job.Phase == history.ErasureRecords {
		if err := e.moveRecords(ctx, acct, job, job.Emails); err != nil {
			return false, err
		}
		n, err := e.sweep(ctx, acct, job, job.Emails)
		if err != nil {
			return false, err
		}
		job.Counts.Deleted += n
		job.Phase = history.ErasureDestinations
		if err := e.repo.SaveErasureJob(ctx, job); err != nil {
			return false, err
		}
	}
	if err := e.send(ctx, job); err != nil {
		return false, err
	}
	return e.finish(ctx, acct, job)
}

// ContinueAll carries on every pending erasure (the schedule calls it every minute).
func (e *Eraser) ContinueAll(ctx context.Context, get func(ctx context.Context, id string) (accounts.Account, error)) error {
	jobs, err := e.repo.PendingErasures(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, j := range jobs {
		acct, err := get(ctx, j.Account)
		if errors.Is(err, accounts.ErrNotFound) {
			// The account itself is gone, and the records with it as far as this job goes.
			acct, err = accounts.Account{ID: j.Account}, nil
		}
		if err == nil {
			_, err = e.Continue(ctx, acct, j)
		}
		if err != nil && !errors.Is(err, store.ErrConditionFailed) {
			errs = append(errs, fmt.Errorf("erasure into %s of %s: %w", j.Pseudonym, j.Account, err))
		}
	}
	return errors.Join(errs...)
}

// moveRecords moves every order and subscription of the contact's partitions to the pseudonym,
// pseudonymized, and deletes its carts and unsent facts, a step at a time.
func (e *Eraser) moveRecords(ctx context.Context, acct accounts.Account, job *history.ErasureJob, addrs []string) error {
	for _, addr := range addrs {
		conflicts := 0
		for range maxSteps {
			n, err := e.moveStep(ctx, acct, job, addr)
			if errors.Is(err, store.ErrConditionFailed) || errors.Is(err, store.ErrConflict) {
				if conflicts++; conflicts >= maxConflicts {
					return err
				}
				fresh, rerr := e.repo.ErasureJob(ctx, acct.ID, job.Pseudonym)
				if rerr != nil || fresh == nil {
					return errors.Join(err, rerr)
				}
				*job = *fresh
				continue
			}
			if err != nil {
				return err
			}
			conflicts = 0
			if n == 0 {
				break
			}
		}
	}
	return nil
}

// moveStep is one transaction of moveRecords; it returns how many records it handled (0 when
// addr's partition has none left).
func (e *Eraser) moveStep(ctx context.Context, acct accounts.Account, job *history.ErasureJob, addr string) (int, error) {
	cache := map[string]*history.ContactState{}
	load := loader(e.repo, acct.ID, cache)
	src, err := load(ctx, addr)
	if err != nil {
		return 0, err
	}
	pc, err := load(ctx, job.Pseudonym)
	if err != nil {
		return 0, err
	}
	w := &history.Writes{}
	n := 0
	var counts history.ErasureCounts
	for _, o := range src.OrderList() {
		if n == stepRecords {
			break
		}
		w.DeleteOrder(src, o.Key)
		delete(src.Orders, o.Key)
		po := domain.PseudonymizeOrder(o, job.Pseudonym, job.Emails...)
		pc.Orders[po.Key] = po
		w.PutOrder(pc, po)
		n++
		counts.Orders++
	}
	for _, s := range src.SubList() {
		if n == stepRecords {
			break
		}
		w.DeleteSub(src, s.Key)
		delete(src.Subs, s.Key)
		ps := domain.PseudonymizeSubscription(s, job.Pseudonym, job.Emails...)
		pc.Subs[ps.Key] = ps
		w.PutSub(pc, ps)
		n++
		counts.Subscriptions++
	}
	for key := range src.Carts {
		if n == stepRecords {
			break
		}
		w.DeleteCart(src, key)
		n++
		counts.Deleted++
	}
	for _, f := range src.Outbox {
		if n == stepRecords {
			break
		}
		w.DeleteOutbox(src, f.ID)
		n++
		counts.Deleted++
	}
	if n == 0 {
		return 0, nil
	}
	// The pseudonym's contact counts the records wherever they are, so moving them changes no
	// total; its version moves, so that nothing that read it before commits on top.
	w.TouchProfile(pc)
	job.Counts.Add(counts)
	w.PutErasureJob(job)
	staged, err := reports.Stage(ctx, e.d.Store, acct.ID, acct.Timezone, w, load, nil, 0, e.d.Clock.Now())
	if err != nil {
		return 0, err
	}
	if err := e.repo.Commit(ctx, w); err != nil {
		return 0, err
	}
	job.Written()
	if err := reports.Finish(ctx, e.d.Store, staged); err != nil {
		e.d.Log.Warn("pending rollup writes not applied yet", slog.String("account", acct.ID), slog.Any("error", err))
	}
	return n, nil
}

// sweep deletes what is kept about the contact's addresses outside its partitions: the source's
// record of its customer profiles, what each destination keeps in the table (page views,
// timers, list memberships, review claims, contact ids), and the quarantined events that
// mention them. It returns how many items it deleted.
func (e *Eraser) sweep(ctx context.Context, acct accounts.Account, job *history.ErasureJob, addrs []string) (int, error) {
	n := 0
	for _, id := range job.CustomerIDs {
		src, cid, ok := strings.Cut(id, ":")
		if !ok {
			continue
		}
		gone, err := e.repo.ForgetCustomer(ctx, acct.ID, src, cid, addrs)
		if err != nil {
			return n, err
		}
		if gone {
			n++
		}
	}
	pc, err := e.repo.LoadContact(ctx, acct.ID, job.Pseudonym)
	if err != nil {
		return n, err
	}
	keys := make([]string, 0, len(pc.Orders))
	for k := range pc.Orders {
		keys = append(keys, k)
	}
	m, err := iterable.ForgetLocal(ctx, e.d.Store, e.d.Clock, acct.ID, addrs, keys)
	n += m
	if err != nil {
		return n, err
	}
	m, err = reports.ForgetViews(ctx, e.d.Store, acct.ID, addrs, job.Pseudonym)
	n += m
	if err != nil {
		return n, err
	}
	m, err = ontraport.ForgetLocal(ctx, e.d.Store, acct.ID, addrs)
	n += m
	if err != nil {
		return n, err
	}
	m, err = e.sweepQuarantine(ctx, acct.ID, addrs)
	return n + m, err
}

// sweepQuarantine deletes the account's kept-raw events that mention any of emails, in the
// event as the source sent it or in the reason it was kept.
func (e *Eraser) sweepQuarantine(ctx context.Context, account string, emails []string) (int, error) {
	kept, err := e.repo.QuarantineList(ctx, account, 0)
	if err != nil {
		return 0, fmt.Errorf("read the quarantined events of %s: %w", account, err)
	}
	n := 0
	for _, q := range kept {
		texts := []string{q.Reason, q.Message}
		if e.d.Quarantine != nil {
			if payload, err := e.d.Quarantine.Payload(ctx, q.Message); err == nil {
				texts = append(texts, string(payload))
			}
		}
		if !mentions(emails, texts...) {
			continue
		}
		if e.d.Quarantine != nil {
			if err := e.d.Quarantine.Discard(ctx, q.Message); err != nil {
				return n, err
			}
		}
		gone, err := e.repo.DeleteQuarantined(ctx, account, q.ID)
		if err != nil {
			return n, err
		}
		if gone {
			n++
		}
	}
	return n, nil
}

// mentions reports whether any text has one of emails in it: as written (whatever its case),
// URL-encoded (a form body) or with its @ escaped in JSON.
func mentions(emails []string, texts ...string) bool {
	for _, t := range texts {
		t = strings.ToLower(t)
		for _, e := range emails {
			for _, f := range []string{e, strings.ToLower(url.QueryEscape(e)), strings.ReplaceAll(e, "@", `\u0040`)} {
				if f != "" && strings.Contains(t, f) {
					return true
				}
			}
		}
	}
	return false
}

// send puts every request not sent yet on its destination's queue, in the FIFO group of its
// address: behind every fact of the contact queued before.
func (e *Eraser) send(ctx context.Context, job *history.ErasureJob) error {
	perDest := map[string][]queue.Message{}
	for _, r := range job.Requests {
		if r.Sent {
			continue
		}
		body, err := json.Marshal(job.Fact(r))
		if err != nil {
			return err
		}
		perDest[r.Dest] = append(perDest[r.Dest], queue.Message{ID: fmt.Sprintf("e%d", len(perDest[r.Dest])), Body: string(body),
			GroupID: job.Account + "|" + r.Group, DedupID: r.FactID,
			Attributes: map[string]string{"account": job.Account, "fact_kind": string(domain.FactContactErased)}})
	}
	if len(perDest) == 0 {
		return nil
	}
	for dest, msgs := range perDest {
		if err := e.d.Queue.Send(ctx, dest, msgs); err != nil {
			return fmt.Errorf("ask %s to forget the erased contact: %w", dest, err)
		}
	}
	for i := range job.Requests {
		job.Requests[i].Sent = true
	}
	// A crash before this write sends them again: the queue's deduplication and the
	// forwarder's fact-done marker make that harmless.
	return e.repo.SaveErasureJob(ctx, job)
}

// Settle records what a destination did with its erasure request: delivered (sent, or recorded
// in a dry run) or parked. When it was the last, the erasure ends if SettleAfter has passed, or
// on a later run of the schedule.
func (e *Eraser) Settle(ctx context.Context, acct accounts.Account, pseudonym, dest, factID, outcome string) error {
	for range maxConflicts + 2 {
		job, err := e.repo.ErasureJob(ctx, acct.ID, pseudonym)
		if err != nil || job == nil {
			return err
		}
		changed := false
		for i, r := range job.Requests {
			if r.Dest == dest && r.FactID == factID && r.Outcome != outcome {
				job.Requests[i].Outcome, changed = outcome, true
			}
		}
		if !changed {
			return nil
		}
		err = e.repo.SaveErasureJob(ctx, job)
		if errors.Is(err, store.ErrConditionFailed) {
			continue
		}
		if err != nil {
			return err
		}
		if job.Settled() {
			if _, err := e.finish(ctx, acct, job); err != nil && !errors.Is(err, store.ErrConditionFailed) {
				e.d.Log.Warn("erasure settled; the schedule ends it", slog.String("account", acct.ID), slog.Any("error", err))
			}
		}
		return nil
	}
	return fmt.Errorf("record %s's answer to the erasure: the job kept changing", dest)
}

// finish ends a settled erasure once SettleAfter has passed: whatever was written about the
// contact meanwhile goes (records moved or deleted again, the fact log, the delivery log and the
// failures kept with it, the destinations' records of facts that name an address), then the
// marks, the aliases and the job, and with them the last copy of the addresses.
func (e *Eraser) finish(ctx context.Context, acct accounts.Account, job *history.ErasureJob) (bool, error) {
	if job.Phase != history.ErasureDestinations || !job.Settled() || e.d.Clock.Now().Before(job.At.Add(SettleAfter)) {
		return false, nil
	}
	// An address whose mark an earlier, interrupted end removed already may be a new contact
	// by now: only the addresses still marked are the erased contact's.
	var live []string
	for _, addr := range job.Emails {
		p, err := e.repo.Erasing(ctx, acct.ID, addr)
		if err != nil {
			return false, err
		}
		if p == job.Pseudonym {
			live = append(live, addr)
		}
	}
	if err := e.moveRecords(ctx, acct, job, live); err != nil {
		return false, err
	}
	deleted := 0
	for _, addr := range live {
		for range maxSteps {
			res, err := e.repo.EraseLogs(ctx, acct.ID, addr, 50)
			if err != nil {
				return false, err
			}
			deleted += res.Deleted
			for _, id := range res.FactIDs {
				if !history.FactIDNames(id, job.Emails) {
					continue
				}
				for _, d := range destinations.Names() {
					if err := e.repo.DeleteFactDone(ctx, acct.ID, d, id); err != nil {
						return false, err
					}
				}
			}
			if !res.More {
				break
			}
		}
	}
	n, err := e.sweep(ctx, acct, job, live)
	if err != nil {
		return false, err
	}
	job.Counts.Deleted += deleted + n
	// The marks go last, so that a crash before leaves the contact stopped and the job to
	// finish again; in steps, should the contact have had more addresses than one transaction
	// holds.
	var ws [][]func(w *history.Writes)
	var cur []func(w *history.Writes)
	for _, addr := range live {
		cur = append(cur, func(w *history.Writes) {
			w.DeleteErasing(acct.ID, addr)
			w.DeleteAlias(acct.ID, addr)
			w.DeleteMoveIn(acct.ID, job.Pseudonym, addr)
		})
		if len(cur) == 25 {
			ws, cur = append(ws, cur), nil
		}
	}
	ws = append(ws, cur)
	var answers []string
	for _, d := range destinations.Names() {
		for _, outcome := range []string{history.ErasureDelivered, history.ErasureParked} {
			n := 0
			for _, r := range job.Requests {
				if r.Dest == d && r.Outcome == outcome {
					n++
				}
			}
			if n > 0 {
				answers = append(answers, fmt.Sprintf("%s %s %d", d, outcome, n))
			}
		}
	}
	// The end is recorded with the last write, the one that removes the job.
	entry, err := audit.Put(audit.Entry{Account: job.Account, At: e.d.Clock.Now().UTC(), Actor: job.By, Action: audit.EraseContact,
		Target: job.Pseudonym, Summary: fmt.Sprintf("erasure of a contact (asked %s) complete: %d address(es) erased, %d order(s) and %d subscription(s) kept under its pseudonym, %d other record(s) deleted; requests to forget it: %s",
			job.At.UTC().Format(time.RFC3339), job.Counts.Addresses, job.Counts.Orders, job.Counts.Subscriptions, job.Counts.Deleted, orNone(answers))})
	if err != nil {
		return false, err
	}
	for i, batch := range ws {
		w := &history.Writes{}
		for _, f := range batch {
			f(w)
		}
		if i == len(ws)-1 {
			w.DeleteErasing(acct.ID, job.Pseudonym)
			w.DeleteErasureJob(job)
			w.Append(entry)
		}
		if err := e.repo.Commit(ctx, w); err != nil {
			return false, err
		}
	}
	job.Written()
	e.d.Log.Info("erasure complete", slog.String("account", job.Account), slog.String("pseudonym", job.Pseudonym),
		slog.Int("orders_kept", job.Counts.Orders), slog.Int("records_deleted", job.Counts.Deleted))
	return true, nil
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none (no destination enabled)"
	}
	return strings.Join(xs, ", ")
}
