package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/ledger"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/sources"
	"github.com/cartrelay/cartrelay/shared/store"
)

// DedupeTTL is how long a source event is remembered by content (docs/architecture.md, Storage: 30 days).
const DedupeTTL = 30 * 24 * time.Hour

// maxApplyAttempts bounds the optimistic retries when concurrent ingests touch one contact.
const maxApplyAttempts = 8

// normalize turns a stored source event into domain events with its source's registration; an
// event of a source no longer registered is an error, kept raw with the reason.
func normalize(se SourceEvent, acct accounts.Account, phone domain.PhoneFunc) ([]domain.Event, error) {
	reg, err := sources.Lookup(string(se.Source))
	if err != nil {
		return nil, err
	}
	return reg.Normalize(source.Raw{Name: se.Name, Payload: se.Payload, Index: se.Index, ReceivedAt: se.ReceivedAt}, acct, phone)
}

// ingestion applies the domain events of one source event.
type ingestion struct {
	a        *App
	repo     *history.Repo
	acct     accounts.Account
	se       SourceEvent
	log      *slog.Logger
	hash     string
	markDone bool
	// out collects the facts the batch's commits left in outboxes, to be sent and cleared once
	// for the whole batch; msgID is the ingest message they are charged to if that fails.
	out   *outboxBatch
	msgID string
	// states holds the contacts read by one attempt, so that a contact read twice (as the
	// source of a record and as part of another's history still moving) is one value.
	states map[string]*history.ContactState
	// moves are the email changes the attempt started; their records move after the commit.
	moves []string
	// customers are the source customer profiles this attempt read (ingestion.customer).
	customers map[string]history.CustomerRecord
	// salt moves the rollup writes to other shards after an item grew too large.
	salt int
}

func (in *ingestion) apply(ctx context.Context, de domain.Event) error {
	if cu := de.Customer; de.Kind == domain.KindCustomer && cu != nil && cu.Deleted && cu.Email != "" && in.acct.UltraCart.EraseOnCustomerDelete {
		return in.erase(ctx, *cu)
	}
	var lastErr error
	for attempt := 1; attempt <= maxApplyAttempts; attempt++ {
		touched, err := in.applyOnce(ctx, de)
		if err == nil || errors.Is(err, errAgain) {
			if err := in.routeOutboxes(ctx, touched); err != nil {
				return err
			}
			for _, from := range in.moves {
				// The change is committed; its records follow. Whatever is not moved here (a
				// crash, a race) the schedule moves on its next run.
				if err := in.a.continueMove(ctx, in.acct, from); err != nil {
					in.log.Warn("email move paused; the schedule continues it", slog.String("from", from), slog.Any("error", err))
				}
			}
			if err == nil {
				return nil
			}
			continue // the first step is committed; apply the rest
		}
		switch {
		case errors.Is(err, store.ErrConditionFailed), errors.Is(err, store.ErrConflict):
			// Another ingest changed one of the same items first: read again and re-apply.
		case errors.Is(err, store.ErrTooLarge) && in.salt < maxApplyAttempts:
			// A rollup item of a busy period is full: spread over the next shards.
			in.salt++
		default:
			return err
		}
		lastErr = err
		in.log.Debug("concurrent change; applying again", slog.Int("attempt", attempt))
	}
	return fmt.Errorf("gave up after %d concurrent changes: %w", maxApplyAttempts, lastErr)
}

// routeOutboxes hands the committed outboxes of the touched contacts to the batch, which sends
// and clears them all at once after its last commit. An email change cannot wait for that: its
// records move right after this, and the old contact's unsent facts must reach the destinations
// under the old email before the change does, so then they are sent and cleared here, and the
// batch forgets them.
func (in *ingestion) routeOutboxes(ctx context.Context, touched []*history.ContactState) error {
	if len(in.moves) == 0 && in.out != nil {
		for _, st := range touched {
			in.out.add(in.acct, st.Email, st.Outbox, in.msgID)
		}
		return nil
	}
	for _, st := range touched {
		if err := in.a.flush(ctx, in.acct, st.Email, st.Outbox); err != nil {
			return err
		}
		if in.out != nil {
			in.out.forget(in.acct.ID, st.Email, st.Outbox)
		}
	}
	return nil
}

// applyOnce reads, merges and commits; it returns the contacts whose outboxes need flushing.
func (in *ingestion) applyOnce(ctx context.Context, de domain.Event) ([]*history.ContactState, error) {
	w := &history.Writes{}
	in.states, in.moves = map[string]*history.ContactState{}, nil
	in.customers = map[string]history.CustomerRecord{}
	var touched []*history.ContactState
	var err error
	switch de.Kind {
	case domain.KindOrder:
		touched, err = in.applyOrder(ctx, w, *de.Order, de.OccurredAt)
	case domain.KindSubscription:
		touched, err = in.applySub(ctx, w, *de.Sub, de.OccurredAt)
	case domain.KindCustomer:
		touched, err = in.applyCustomer(ctx, w, *de.Customer, de.OccurredAt, de.Name)
	case domain.KindItem:
		touched, err = in.applyItem(ctx, w, *de.Item, de.OccurredAt)
	case domain.KindCart:
		touched, err = in.applyCart(ctx, w, *de.Cart, de.OccurredAt)
	case domain.KindAffiliate:
		touched, err = in.applyAffiliate(ctx, w, *de.AffiliateSignup)
	default:
		return nil, fmt.Errorf("event %s normalized to unknown kind %q", de.Name, de.Kind)
	}
	again := errors.Is(err, errAgain)
	if err != nil && !again {
		return nil, err
	}
	if in.markDone && !again {
		w.MarkIngested(in.acct.ID, in.hash, in.a.d.Clock.Now(), DedupeTTL)
	}
	staged, err := reports.Stage(ctx, in.a.d.Store, in.acct.ID, in.acct.Timezone, w, in.contact, &in.a.zones, in.salt, in.a.d.Clock.Now())
	if err != nil {
		return nil, err
	}
	if err := in.repo.Commit(ctx, w); err != nil {
		return nil, err
	}
	if err := reports.Finish(ctx, in.a.d.Store, staged); err != nil {
		// Committed: the pending rollup writes wait for the schedule's next drain.
		in.log.Warn("pending rollup writes not applied yet", slog.Int("pending", len(staged.Pending)), slog.Any("error", err))
	}
	if again {
		return touched, errAgain
	}
	return touched, nil
}

func (in *ingestion) cutover() ledger.Cutover {
	return ledger.Cutover{ForwardSince: in.acct.ForwardSince}
}

// load reads a contact, following email aliases.
func (in *ingestion) load(ctx context.Context, email string) (*history.ContactState, error) {
	resolved, err := in.resolve(ctx, email)
	if err != nil {
		return nil, err
	}
	return in.contact(ctx, resolved)
}

// resolve follows email aliases to the contact's current email. A contact this attempt read
// already (an order's, before its email is resolved) had its alias read with it, after its
// profile, so that one is not read again.
func (in *ingestion) resolve(ctx context.Context, email string) (string, error) {
	if st, ok := in.states[email]; ok && st.StoredAliasOf == "" {
		return email, nil
	}
	return in.repo.ResolveEmail(ctx, in.acct.ID, email)
}

// customer reads what is known of a source customer profile's email once per attempt (an order
// needs it to tell an email change it arrived after, and to seed the profile).
func (in *ingestion) customer(ctx context.Context, source domain.Source, id string) (history.CustomerRecord, error) {
	k := string(source) + "#" + id
	if rec, ok := in.customers[k]; ok {
		return rec, nil
	}
	rec, err := in.repo.Customer(ctx, in.acct.ID, string(source), id)
	if err != nil {
		return rec, err
	}
	in.customers[k] = rec
	return rec, nil
}

// contact reads a contact once per attempt (see ingestion.states).
func (in *ingestion) contact(ctx context.Context, email string) (*history.ContactState, error) {
	if st, ok := in.states[email]; ok {
		return st, nil
	}
	// The contact's read takes its alias again, after its profile, even when resolve has just
	// found none: an email change committed between resolve and the profile's read leaves a
	// profile whose version the commit's condition accepts, and only the alias read after it
	// shows that the contact has moved.
	st, err := in.repo.LoadContact(ctx, in.acct.ID, email)
	if err != nil {
		return nil, err
	}
	if st.ErasingInto != "" {
		return nil, fmt.Errorf("%w (into %s); the event is applied once the erasure is complete", ErrErasing, st.ErasingInto)
	}
	in.states[email] = st
	return st, nil
}

// ErrErasing is returned for an event whose contact is being erased: it waits on the queue
// until the erasure is complete, and then starts a new contact.
var ErrErasing = errors.New("the contact is being erased")

// ErasureRetry is how long an event of a contact being erased first waits: an erasure ends
// erasure.SettleAfter after it began at the earliest. Each later wait doubles, so the ingest
// queue's five receives span 45 minutes before the event goes to the dead-letter queue
// (replayable) because a destination has not answered the erasure all that time.
const ErasureRetry = 3 * time.Minute

func erasureWait(rec events.SQSMessage) time.Duration {
	n, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
	wait := ErasureRetry
	for i := 1; i < n && wait < time.Hour; i++ {
		wait *= 2
	}
	return min(wait, time.Hour)
}

// records are the orders and subscriptions a contact's aggregates count: its own, and, while an
// email change is still moving them, those left under its previous emails.
func (in *ingestion) records(ctx context.Context, st *history.ContactState) ([]domain.Order, []domain.Subscription, error) {
	orders, subs := st.OrderList(), st.SubList()
	// Follow the chain of changes still moving (a→b moving while b→c moves too); the states
	// come from this attempt's reads, so a record it moved in memory is counted where it is now.
	seen := map[string]bool{st.Email: true}
	next := slices.Clone(st.MovingFrom)
	for len(next) > 0 {
		e := next[0]
		next = next[1:]
		if seen[e] {
			continue
		}
		seen[e] = true
		src, err := in.contact(ctx, e)
		if err != nil {
			return nil, nil, err
		}
		orders, subs = append(orders, src.OrderList()...), append(subs, src.SubList()...)
		next = append(next, src.MovingFrom...)
	}
	return orders, subs, nil
}

// refresh recomputes a contact's profile from its records and stages the profile and the
// resulting facts; facts are appended to the contact's outbox for flushing after the commit. A
// contact whose email changed away has no profile of its own any more: what is left of it is
// counted by the new one.
func (in *ingestion) refresh(ctx context.Context, w *history.Writes, st *history.ContactState, facts []domain.Fact, at time.Time) error {
	if st.AliasOf != "" && len(facts) == 0 {
		return nil
	}
	orders, subs, err := in.records(ctx, st)
	if err != nil {
		return err
	}
	after := ledger.Aggregate(st.Profile, orders, subs)
	if st.AliasOf != "" {
		// Facts never land here (records resolve to the new email), but if one did it is
		// still recorded and sent rather than lost.
		w.AddFacts(st, facts)
		st.Outbox = append(st.Outbox, facts...)
		return nil
	}
	if st.ProfileVersion == 0 || !reflect.DeepEqual(after, st.Stored) {
		facts = append(facts, ledger.ContactFacts(in.acct.ID, st.Stored, after, at, in.cutover())...)
		w.PutProfile(st, after)
	}
	if len(facts) > 0 {
		w.AddFacts(st, facts)
		st.Outbox = append(st.Outbox, facts...)
	}
	st.Profile = after
	st.Stored = after
	return nil
}

// record is what applyRecord needs to know about one kind of per-contact record (orders,
// subscriptions): where it is indexed, how it is stored, and how versions of it merge.
type record[T any] struct {
	key    string
	find   func(ctx context.Context, account, key string) (email string, err error)
	table  func(*history.ContactState) map[string]T
	put    func(*history.ContactState, T)
	remove func(*history.ContactState, string)
	// merge folds the incoming version into the stored one (nil when new).
	merge func(stored *T) (T, error)
	// pseudonymize keeps a record of an erased contact erased (domain.PseudonymizeOrder).
	pseudonymize func(T, string) T
	email        func(T) string
	facts        func(stored *T, merged T) []domain.Fact
	// placed runs once the record's contact is known, to stage related writes.
	placed func(ctx context.Context, merged T, email string) error
}

// applyRecord merges a record into its contact. When the merged record belongs to another email
// than the contact that held it (its billing email changed), it leaves the old contact, whose
// totals drop, for the new one.
func applyRecord[T any](ctx context.Context, in *ingestion, w *history.Writes, r record[T], at time.Time) ([]*history.ContactState, error) {
	prevEmail, err := r.find(ctx, in.acct.ID, r.key)
	if err != nil {
		return nil, err
	}
	var src *history.ContactState
	var stored *T
	if prevEmail != "" {
		if src, err = in.contact(ctx, prevEmail); err != nil {
			return nil, err
		}
		if x, ok := r.table(src)[r.key]; ok {
			stored = &x
		}
	}
	merged, err := r.merge(stored)
	if err != nil {
		return nil, err
	}
	var target string
	if src != nil && domain.IsPseudonym(src.Email) {
		// A record of an erased contact stays with its pseudonym, and what the source reports
		// of it now is pseudonymized as it was: a refund still counts, and nobody is named again.
		merged, target = r.pseudonymize(merged, src.Email), src.Email
	} else if target, err = in.resolve(ctx, r.email(merged)); err != nil {
		return nil, err
	}
	dst := src
	if src == nil || src.Email != target {
		if dst, err = in.contact(ctx, target); err != nil {
			return nil, err
		}
	}
	if _, ok := r.table(dst)[r.key]; ok && stored == nil {
		// The index read above missed the record (it was stored after that read, or a
		// DynamoDB index lags its table), but the contact read since holds it. Merged from
		// nothing, the record would replace what is stored under the very version guarding the
		// write, losing a refund or a shipment applied meanwhile: read everything again.
		return nil, fmt.Errorf("%s is under %s already, which its index did not show yet: %w", r.key, dst.Email, store.ErrConflict)
	}
	if r.placed != nil {
		if err := r.placed(ctx, merged, target); err != nil {
			return nil, err
		}
	}
	facts := r.facts(stored, merged)
	for i := range facts {
		facts[i].Email = dst.Email
	}
	var touched []*history.ContactState
	if src != nil && src != dst {
		r.remove(src, r.key)
		delete(r.table(src), r.key)
		if err := in.refresh(ctx, w, src, nil, at); err != nil {
			return nil, err
		}
		touched = append(touched, src)
	}
	if stored == nil || src != dst || !reflect.DeepEqual(*stored, merged) {
		r.table(dst)[r.key] = merged
		r.put(dst, merged)
	}
	if err := in.refresh(ctx, w, dst, facts, at); err != nil {
		return nil, err
	}
	return append(touched, dst), nil
}

func (in *ingestion) applyOrder(ctx context.Context, w *history.Writes, o domain.Order, at time.Time) ([]*history.ContactState, error) {
	if touched, moved, err := in.oldEmail(ctx, w, o, at); err != nil || moved {
		if moved {
			err = errAgain
		}
		return touched, err
	}
	return applyRecord(ctx, in, w, record[domain.Order]{
		key:    o.Key,
		find:   in.repo.FindOrder,
		table:  func(c *history.ContactState) map[string]domain.Order { return c.Orders },
		put:    w.PutOrder,
		remove: w.DeleteOrder,
		merge: func(stored *domain.Order) (domain.Order, error) {
			merged := ledger.MergeOrder(stored, o)
			if len(o.Chargebacks) > 0 {
				if err := checkDispute(o, merged); err != nil {
					return merged, err
				}
			}
			return merged, nil
		},
		pseudonymize: func(o domain.Order, p string) domain.Order { return domain.PseudonymizeOrder(o, p) },
		email:        func(o domain.Order) string { return o.Email },
		facts: func(stored *domain.Order, merged domain.Order) []domain.Fact {
			return ledger.OrderFacts(in.acct.ID, stored, merged, in.cutover())
		},
		placed: func(ctx context.Context, merged domain.Order, email string) error {
			if merged.CustomerID == "" {
				return nil
			}
			// The email of a customer profile's earliest order is where an email change on that
			// profile starts from. Orders only seed it, and only until a customer event speaks
			// for the profile: a gift order with another billing email must not move it.
			known, err := in.customer(ctx, merged.Source, merged.CustomerID)
			t := rollup.PurchaseTime(&merged)
			if err == nil && !known.ByCustomer && (known.Email == "" || (!t.IsZero() && t.Before(known.At) && email != known.Email)) {
				w.PutCustomerRecord(in.acct.ID, string(merged.Source), merged.CustomerID, history.CustomerRecord{Email: email, At: t})
			}
			return err
		},
	}, at)
}

// erase erases the contact of a customer profile the source deleted (the account opted in with
// ultracart.erase_on_customer_delete), and forgets the profile's record of its email.
func (in *ingestion) erase(ctx context.Context, cu domain.Customer) error {
	if in.a.eraser == nil {
		return errors.New("this process cannot erase contacts (it has no account keys); the event waits until it can")
	}
	res, err := in.a.eraser.Erase(ctx, in.acct, cu.Email, "ultracart customer_delete")
	if err != nil {
		return fmt.Errorf("erase the contact of a deleted customer profile: %w", err)
	}
	in.log.Info("deleted customer profile: contact erased", slog.String("pseudonym", res.Pseudonym),
		slog.Int("orders_kept", res.Orders), slog.Bool("under_way_already", res.Already))
	if cu.CustomerID != "" {
		if _, err := in.repo.ForgetCustomer(ctx, in.acct.ID, string(cu.Source), cu.CustomerID, []string{cu.Email}); err != nil {
			return err
		}
	}
	if !in.markDone {
		return nil
	}
	w := &history.Writes{}
	w.MarkIngested(in.acct.ID, in.hash, in.a.d.Clock.Now(), DedupeTTL)
	if err := in.repo.Commit(ctx, w); err != nil && !errors.Is(err, store.ErrConditionFailed) {
		return err
	}
	return nil
}

// errAgain says a change committed a first step and must be applied again for the rest.
var errAgain = errors.New("applied in two steps")

// oldEmail handles an order placed, under a customer profile, with an email that the profile had
// before a change already applied from a later customer event (the events arrived out of order: a
// backfill, a poller that walks customers apart from orders). That email joins the profile's
// current one first, in its own commit, as it would have had the order arrived before the change;
// then the order is applied again and lands there. moved says the first step was taken.
func (in *ingestion) oldEmail(ctx context.Context, w *history.Writes, o domain.Order, at time.Time) ([]*history.ContactState, bool, error) {
	t := rollup.PurchaseTime(&o)
	if o.CustomerID == "" || o.Email == "" || t.IsZero() {
		return nil, false, nil
	}
	rec, err := in.customer(ctx, o.Source, o.CustomerID)
	if err != nil || !rec.ByCustomer || rec.Email == "" || rec.Email == o.Email || !t.Before(rec.At) {
		return nil, false, err
	}
	cur, err := in.resolve(ctx, o.Email)
	if err != nil || cur == rec.Email {
		return nil, false, err
	}
	touched, err := in.changeEmail(ctx, w, o.Email, domain.Customer{Email: rec.Email}, at)
	return touched, err == nil, err
}

// checkDispute refuses a chargeback report that cannot be counted: on an order cartrelay has
// not seen (the report names no email), or in a currency the order's amounts cannot be
// converted from. Either is quarantined with what to do, and replays cleanly once fixed.
func checkDispute(in, merged domain.Order) error {
	if merged.Email == "" {
		return unprocessable(fmt.Errorf("chargeback on order %s, which cartrelay has not received yet, and the report carries no "+
			"order to take the buyer from: replay it once the order is ingested (or add the order to the chargeback webhook's expansion)", merged.OrderID))
	}
	for _, l := range ledger.UncountableChargebacks(merged) {
		for _, x := range in.Chargebacks {
			if x.ID == l.ID {
				return unprocessable(fmt.Errorf("chargeback %s on order %s is %s, but the order is in %s (its customer paid in %s): "+
					"there is no rate to count it exactly, so it was not applied", l.ID, merged.OrderID, l.Amount,
					merged.Total.Currency, merged.CustomerTotal.Currency))
			}
		}
	}
	return nil
}

func (in *ingestion) applySub(ctx context.Context, w *history.Writes, s domain.Subscription, at time.Time) ([]*history.ContactState, error) {
	return applyRecord(ctx, in, w, record[domain.Subscription]{
		key:    s.Key,
		find:   in.repo.FindSub,
		table:  func(c *history.ContactState) map[string]domain.Subscription { return c.Subs },
		put:    w.PutSub,
		remove: w.DeleteSub,
		merge: func(stored *domain.Subscription) (domain.Subscription, error) {
			// Some subscription events name no email; they belong to whoever has the subscription.
			if s.Email == "" && stored != nil {
				s.Email = stored.Email
			}
			if s.Email == "" {
				return s, fmt.Errorf("subscription %s has no email and is not known yet", s.Key)
			}
			return ledger.MergeSubscription(stored, s), nil
		},
		pseudonymize: func(s domain.Subscription, p string) domain.Subscription {
			return domain.PseudonymizeSubscription(s, p)
		},
		email: func(s domain.Subscription) string { return s.Email },
		facts: func(stored *domain.Subscription, merged domain.Subscription) []domain.Fact {
			return ledger.SubscriptionFacts(in.acct.ID, stored, merged, in.cutover())
		},
	}, at)
}

func (in *ingestion) applyCustomer(ctx context.Context, w *history.Writes, cu domain.Customer, at time.Time, name string) ([]*history.ContactState, error) {
	if cu.Email == "" {
		return nil, nil
	}
	prev := ""
	if cu.CustomerID != "" {
		rec, err := in.repo.Customer(ctx, in.acct.ID, string(cu.Source), cu.CustomerID)
		if err != nil {
			return nil, err
		}
		if rec.ByCustomer && rec.Email != cu.Email && !cu.Deleted && !at.IsZero() && at.Before(rec.At) {
			// A report older than the one already applied: its email is one the profile had
			// before, so it joins the profile's current email, as if it had arrived in time.
			return in.changeEmail(ctx, w, cu.Email, domain.Customer{Email: rec.Email}, at)
		}
		prev = rec.Email
		if domain.IsPseudonym(prev) {
			prev = "" // never an email change away from an erased contact
		}
		w.PutCustomerRecord(in.acct.ID, string(cu.Source), cu.CustomerID, history.CustomerRecord{Email: cu.Email, At: at, ByCustomer: true})
	}
	if prev != "" && prev != cu.Email && !cu.Deleted {
		return in.changeEmail(ctx, w, prev, cu, at)
	}
	st, err := in.load(ctx, cu.Email)
	if err != nil {
		return nil, err
	}
	if cu.Deleted {
		// A deleted customer profile leaves the contact and its history as they are.
		return []*history.ContactState{st}, nil
	}
	st.Profile = ledger.ApplyCustomer(st.Profile, cu)
	if err := in.refresh(ctx, w, st, nil, at); err != nil {
		return nil, err
	}
	return []*history.ContactState{st}, nil
}

// changeEmail starts moving a contact's history from its old email to the new one reported on
// the same customer profile. This transaction is small whatever the history's size: the alias
// (from now on events for the old email reach the new contact), the new contact's profile,
// aggregated over both partitions, the EmailChanged fact and the move job. The records follow
// in steps after the commit (history.MoveStep); until they have, the new contact's aggregates
// count the ones still under the old email. Unsent facts of the old contact go out first, under
// the old email, so they reach the destinations before the change does.
func (in *ingestion) changeEmail(ctx context.Context, w *history.Writes, oldEmail string, cu domain.Customer, at time.Time) ([]*history.ContactState, error) {
	old, err := in.load(ctx, oldEmail)
	if err != nil {
		return nil, err
	}
	if old.Email == cu.Email {
		// Already moved (an alias points here): nothing left to do.
		st := old
		if cu.CustomerID != "" {
			st.Profile = ledger.ApplyCustomer(st.Profile, cu)
		}
		if err := in.refresh(ctx, w, st, nil, at); err != nil {
			return nil, err
		}
		return []*history.ContactState{st}, nil
	}
	nw, err := in.contact(ctx, cu.Email)
	if err != nil {
		return nil, err
	}
	if nw.AliasOf != "" {
		// A change back to an address that had moved away: it is the contact again, and a move
		// still pending from it has nothing to do (see history.MoveStep).
		w.DeleteAlias(in.acct.ID, nw.Email)
		nw.AliasOf = ""
	}
	if v := old.FirstView; v != nil && (nw.FirstView == nil || v.At.Before(nw.FirstView.At)) {
		// The first page view is the contact's, not the partition's: it stays the earlier of the
		// two once the records have moved (the move does not carry it).
		nw.FirstView = v
		w.PutFirstView(nw, *v)
	}
	profile := nw.Profile
	if nw.ProfileVersion == 0 {
		profile = old.Profile
		profile.Email = nw.Email
	}
	// The old contact's own previous emails come along, so the contact knows every address it
	// had (an erasure forgets them all).
	for _, e := range append(slices.Clone(old.Profile.PreviousEmails), old.Email) {
		if e != nw.Email {
			profile.PreviousEmails = appendUnique(profile.PreviousEmails, e)
		}
	}
	for k, v := range old.Profile.DestinationIDs {
		if profile.DestinationIDs == nil {
			profile.DestinationIDs = map[string]string{}
		}
		if _, ok := profile.DestinationIDs[k]; !ok {
			profile.DestinationIDs[k] = v
		}
	}
	nw.Profile = profile
	if cu.CustomerID != "" { // a change found from an order or a late report carries no profile
		nw.Profile = ledger.ApplyCustomer(profile, cu)
	}
	w.PutAlias(in.acct.ID, old.Email, nw.Email, at)
	w.DeleteProfile(old)
	w.Touch(old) // what it counted in the reports is now the new contact's
	old.AliasOf = nw.Email
	w.StartMove(in.acct.ID, old.Email, nw.Email, at)
	nw.MovingFrom = appendUnique(nw.MovingFrom, old.Email)
	in.moves = append(in.moves, old.Email)
	facts := ledger.EmailChangeFacts(in.acct.ID, old.Email, nw.Email, nw.Profile, at)
	if err := in.refresh(ctx, w, nw, facts, at); err != nil {
		return nil, err
	}
	return []*history.ContactState{old, nw}, nil
}

func (in *ingestion) applyItem(ctx context.Context, w *history.Writes, it domain.Item, at time.Time) ([]*history.ContactState, error) {
	stored, err := in.repo.Item(ctx, in.acct.ID, it.Source, it.SKU)
	if err != nil {
		return nil, err
	}
	facts := ledger.ItemFacts(in.acct.ID, stored, it, in.cutover())
	if stored != nil && reflect.DeepEqual(*stored, it) {
		return nil, nil
	}
	w.PutItem(in.acct.ID, it)
	// Catalogue facts belong to no contact; they wait in the account-level outbox.
	st, err := in.repo.LoadContact(ctx, in.acct.ID, "")
	if err != nil {
		return nil, err
	}
	if len(facts) > 0 {
		w.AddFacts(st, facts)
		st.Outbox = append(st.Outbox, facts...)
	}
	return []*history.ContactState{st}, nil
}

// applyAffiliate keeps an affiliate program member's status by its id, and puts its facts in the
// outbox of the contact its email names, so they reach destinations in order with that
// contact's other facts. The kept record holds no address or name (every report brings them), so
// there is nothing personal in it for an erasure to find.
func (in *ingestion) applyAffiliate(ctx context.Context, w *history.Writes, a domain.AffiliateSignup) ([]*history.ContactState, error) {
	stored, err := in.repo.Affiliate(ctx, in.acct.ID, a.Source, a.AffiliateID)
	if err != nil {
		return nil, err
	}
	merged := ledger.MergeAffiliate(stored, a)
	keep := merged
	keep.Email, keep.FirstName, keep.LastName = "", "", ""
	if stored != nil && *stored == keep {
		return nil, nil
	}
	w.PutAffiliate(in.acct.ID, keep)
	facts := ledger.AffiliateFacts(in.acct.ID, stored, merged, in.cutover())
	if len(facts) == 0 {
		return nil, nil
	}
	st, err := in.load(ctx, merged.Email)
	if err != nil {
		return nil, err
	}
	for i := range facts {
		// After an email change the facts belong to the address the contact has now.
		facts[i].Email = st.Email
	}
	w.AddFacts(st, facts)
	st.Outbox = append(st.Outbox, facts...)
	return []*history.ContactState{st}, nil
}

func (in *ingestion) applyCart(ctx context.Context, w *history.Writes, c domain.Cart, at time.Time) ([]*history.ContactState, error) {
	if c.Email == "" {
		return nil, nil
	}
	st, err := in.load(ctx, c.Email)
	if err != nil {
		return nil, err
	}
	c.Email = st.Email
	w.PutCart(st, c)
	facts := ledger.CartFacts(in.acct.ID, c, in.cutover())
	if len(facts) > 0 {
		w.AddFacts(st, facts)
		st.Outbox = append(st.Outbox, facts...)
	}
	return []*history.ContactState{st}, nil
}

// flush sends a contact's outbox to every destination that takes the facts, then clears it.
// FIFO deduplication by fact id absorbs a repeat within five minutes, and the forwarder's
// fact-done marker absorbs any later one, so a crash between send and clear is harmless.
func (a *App) flush(ctx context.Context, acct accounts.Account, email string, outbox []domain.Fact) error {
	if len(outbox) == 0 {
		return nil
	}
	ids, perDest, err := route(acct, email, outbox)
	if err != nil {
		return err
	}
	attrs := []any{slog.String("account", acct.ID), slog.Int("facts", len(ids))}
	// The destinations' queues are sent to at once: each send waits for a durable write, and
	// they do not depend on each other.
	all := destinations.All()
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, r := range all {
		msgs := perDest[r.Name]
		attrs = append(attrs, slog.Int(r.Name, len(msgs)))
		if len(msgs) > 0 {
			wg.Go(func() {
				if err := a.d.Queue.Send(ctx, r.Queue.Name, msgs); err != nil {
					errs[i] = fmt.Errorf("send %d fact(s) to %s: %w", len(msgs), r.Name, err)
				}
			})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := history.New(a.d.Store).ClearOutbox(ctx, acct.ID, email, ids); err != nil {
		return err
	}
	a.d.Log.Info("facts routed", attrs...)
	return nil
}

// route turns a contact's outbox into the messages for each destination that takes the facts
// (the destination is enabled for the account, ledger.Route allows the fact under its history
// mode, and an erased contact's pseudonym only where the destination forwards those). ids are
// the outbox's facts, each once, in order; message ids are numbered per destination.
func route(acct accounts.Account, email string, outbox []domain.Fact) (ids []string, perDest map[string][]queue.Message, err error) {
	seen := map[string]bool{}
	perDest = map[string][]queue.Message{}
	dests := destinations.Enabled(acct)
	for _, f := range outbox {
		if seen[f.ID] {
			continue
		}
		seen[f.ID] = true
		ids = append(ids, f.ID)
		body, err := json.Marshal(f)
		if err != nil {
			return nil, nil, err
		}
		for _, r := range dests {
			dest := r.Name
			if !ledger.Route(f, ledger.HistoryMode(r.History(acct))) {
				continue
			}
			if domain.IsPseudonym(email) && !r.ForwardsErased(acct) {
				continue
			}
			perDest[dest] = append(perDest[dest], queue.Message{ID: fmt.Sprintf("f%d", len(perDest[dest])), Body: string(body),
				GroupID: acct.ID + "|" + email, DedupID: f.ID,
				Attributes: map[string]string{"account": acct.ID, "fact_kind": string(f.Kind)}})
		}
	}
	return ids, perDest, nil
}

func appendUnique(xs []string, x string) []string {
	for _, y := range xs {
		if y == x {
			return xs
		}
	}
	return append(xs, x)
}

// unprocessableError is an event that no retry can apply; it is quarantined with its reason.
type unprocessableError struct{ err error }

func (u *unprocessableError) Error() string { return u.err.Error() }
func (u *unprocessableError) Unwrap() error { return u.err }

func unprocessable(err error) error { return &unprocessableError{err} }

// attr reads a string message attribute ("" when absent).
func attr(rec events.SQSMessage, name string) string {
	if a, ok := rec.MessageAttributes[name]; ok && a.StringValue != nil {
		return *a.StringValue
	}
	return ""
}
