// Package erasure forgets a contact at its request (its right to erasure): from `cartrelay
// contacts erase`, the console, or UltraCart's customer_delete when the account opts in.
//
// The contact's personal data goes from everywhere cartrelay keeps it: the profile, every
// address it had (the alias chain of its email changes, and a change still moving), its carts,
// its fact log and unsent facts, the delivery log and the failures kept with it, its page
// views, the quarantined events that mention it, its timers (cart reminders, review requests),
// what each destination keeps about it in the table, and the source's record of its customer
// profile. Its orders and subscriptions stay, for revenue: they move to a pseudonym
// (domain.Pseudonym of an HMAC of the address under the account's own erasure key), with names,
// addresses and phones dropped (domain.PseudonymizeOrder), so every report still adds up to the
// cent and `reports verify` still reconciles. Each destination enabled for the account is sent a
// ContactErased fact through its queue, in the FIFO group of each of the contact's addresses,
// so it is ordered after the contact's earlier facts and retried, logged, parked and replayable
// like any delivery: Iterable forgets the addresses (users/forget), ONTRAPORT anonymizes or
// deletes the contact (ontraport.erasure). The audit log records who asked and when, the
// pseudonym and counts, never the address.
//
// An erasure is a job (history.ErasureJob) that runs in steps of one transaction each, so a
// contact of any size is erased, and a step cut short is carried on by the schedule. While it
// runs, ingest leaves the contact alone (its new events wait on the queue) and the forwarders
// skip the contact's earlier facts instead of sending them. It ends once every destination has
// answered (or parked its request) and SettleAfter has passed since it began, which outlasts
// any ingest or delivery that read the contact before it began; then the last records those
// left go, and the addresses with them. A later event for the address starts a new contact.
package erasure

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/ledger"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/store"
)

// SettleAfter is how long an erasure waits after it began before it removes the last records:
// longer than any function that read the contact before (an ingest, a delivery; none runs for
// more than a few minutes) can take to write what it was about to.
const SettleAfter = 3 * time.Minute

// Keys makes the account's erasure key the first time it is needed (accountkeys.Repo does).
type Keys interface {
	Ensure(ctx context.Context, account string, name accountkeys.Name) (accountkeys.Key, error)
}

// Deps are what an erasure runs over.
type Deps struct {
	Store store.Store
	Queue queue.Queue
	// Keys is needed to start an erasure (the pseudonym is keyed); carrying one on needs none.
	Keys  Keys
	Clock clock.Clock
	Log   *slog.Logger
	// Quarantine reads a kept-raw ingest message back into what the source sent, to tell
	// whether it mentions the contact, and discards what it kept beside the message (the parts
	// of an event too large for the queue). Nil looks at the message as it is.
	Quarantine QuarantineReader
}

// QuarantineReader decodes quarantined ingest messages (shared/app implements it).
type QuarantineReader interface {
	Payload(ctx context.Context, message string) ([]byte, error)
	Discard(ctx context.Context, message string) error
}

// Eraser erases contacts.
type Eraser struct {
	d    Deps
	repo *history.Repo
}

// New checks deps.
func New(d Deps) (*Eraser, error) {
	if d.Store == nil || d.Queue == nil {
		return nil, errors.New("erasure: a store and a queue are required")
	}
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Eraser{d: d, repo: history.New(d.Store)}, nil
}

// ErrPseudonym is returned for a request to erase a pseudonym: it names nobody.
var ErrPseudonym = errors.New("that address is the pseudonym of a contact erased already; it holds no personal data")

// Result is what Erase did.
type Result struct {
	Pseudonym string `json:"pseudonym"`
	// Addresses are how many addresses of the contact were erased.
	Addresses int `json:"addresses"`
	// Orders and Subscriptions are the records kept under the pseudonym.
	Orders        int `json:"orders_kept"`
	Subscriptions int `json:"subscriptions_kept"`
	// Deleted counts every other record deleted so far.
	Deleted int `json:"records_deleted"`
	// Waiting lists the destinations not done with the contact yet.
	Waiting []string `json:"waiting_for,omitempty"`
	// Done is true once the erasure is complete: no trace of the addresses is left.
	Done bool `json:"done"`
	// Already is true when an erasure of the contact was under way already.
	Already bool      `json:"already_under_way,omitempty"`
	AuditID string    `json:"audit_id"`
	At      time.Time `json:"started_at"`
}

// Plan is what erasing an address would touch, for a confirmation.
type Plan struct {
	Email string `json:"email"`
	// Current is the contact's email now, when Email changed to it.
	Current string `json:"current_email,omitempty"`
	// Addresses are all the contact's addresses.
	Addresses     []string `json:"addresses"`
	Contact       bool     `json:"contact"`
	Orders        int      `json:"orders"`
	Subscriptions int      `json:"subscriptions"`
	// Destinations are told to forget the contact.
	Destinations []string `json:"destinations"`
	// Ontraport is what happens to the ONTRAPORT contact ("anonymize" or "delete").
	Ontraport string `json:"ontraport,omitempty"`
}

// Plan reads what an erasure of email would erase, changing nothing.
func (e *Eraser) Plan(ctx context.Context, acct accounts.Account, email string) (Plan, error) {
	if domain.IsPseudonym(email) {
		return Plan{}, ErrPseudonym
	}
	root, err := e.repo.ResolveEmail(ctx, acct.ID, email)
	if err != nil {
		return Plan{}, err
	}
	if domain.IsPseudonym(root) {
		// Its erasure is under way: the address moves there while its records do.
		return Plan{Email: email, Addresses: []string{email}, Destinations: enabled(acct)}, nil
	}
	members, err := e.members(ctx, acct.ID, email, root, map[string]*history.ContactState{})
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Email: email, Destinations: enabled(acct)}
	if root != email {
		p.Current = root
	}
	for _, m := range members {
		p.Addresses = append(p.Addresses, m.Email)
		p.Contact = p.Contact || m.ProfileVersion > 0
		p.Orders += len(m.Orders)
		p.Subscriptions += len(m.Subs)
	}
	if ontraport.Enabled(acct) {
		p.Ontraport = ontraport.Erasure(acct)
	}
	return p, nil
}

func enabled(acct accounts.Account) []string {
	// Every registered destination the account routes to is asked to forget the contact.
	var out []string
	for _, r := range destinations.Enabled(acct) {
		out = append(out, r.Name)
	}
	return out
}

// Erase erases the contact email belongs to (email may be one it had before an email change),
// as far as it can at once, and returns where the erasure stands; the schedule carries on the
// rest. by says who asked, for the audit log. Erasing a contact whose erasure is under way
// reports that erasure.
func (e *Eraser) Erase(ctx context.Context, acct accounts.Account, email, by string) (Result, error) {
	if domain.IsPseudonym(email) {
		return Result{}, ErrPseudonym
	}
	if e.d.Keys == nil {
		return Result{}, errors.New("erasure: this process has no account keys, which make the pseudonym")
	}
	job, already, err := e.start(ctx, acct, email, by)
	if err != nil {
		return Result{}, err
	}
	log := e.d.Log.With(slog.String("account", acct.ID), slog.String("pseudonym", job.Pseudonym))
	if !already {
		log.Info("erasure started", slog.Int("addresses", len(job.Emails)), slog.String("by", by))
	}
	done, err := e.Continue(ctx, acct, job)
	if err != nil {
		log.Warn("erasure paused; the schedule continues it", slog.Any("error", err))
	}
	res := result(job, done)
	res.Already = already
	return res, nil
}

func result(j *history.ErasureJob, done bool) Result {
	r := Result{Pseudonym: j.Pseudonym, Addresses: len(j.Emails), Orders: j.Counts.Orders, Subscriptions: j.Counts.Subscriptions,
		Deleted: j.Counts.Deleted, Done: done, At: j.At}
	if !done {
		for _, q := range j.Requests {
			if q.Outcome == "" && !slices.Contains(r.Waiting, q.Dest) {
				r.Waiting = append(r.Waiting, q.Dest)
			}
		}
	}
	return r
}

// Status reads where the erasure into pseudonym stands (nil when none is pending).
func (e *Eraser) Status(ctx context.Context, account, pseudonym string) (*Result, error) {
	j, err := e.repo.ErasureJob(ctx, account, pseudonym)
	if err != nil || j == nil {
		return nil, err
	}
	r := result(j, false)
	return &r, nil
}

// maxStartAttempts bounds the retries of the first step when the contact is written meanwhile.
const maxStartAttempts = 5

// start takes the first step, or finds the erasure under way.
func (e *Eraser) start(ctx context.Context, acct accounts.Account, email, by string) (*history.ErasureJob, bool, error) {
	key, err := e.d.Keys.Ensure(ctx, acct.ID, accountkeys.Erasure)
	if err != nil {
		return nil, false, fmt.Errorf("the erasure key of %s: %w", acct.ID, err)
	}
	hash := func(s string) string {
		m := hmac.New(sha256.New, []byte(key.Value))
		m.Write([]byte(acct.ID + "\x00" + s))
		return hex.EncodeToString(m.Sum(nil))[:32]
	}
	var lastErr error
	for range maxStartAttempts {
		root, err := e.repo.ResolveEmail(ctx, acct.ID, email)
		if err != nil {
			return nil, false, err
		}
		p := root
		if !domain.IsPseudonym(root) {
			p = domain.Pseudonym(hash(root))
		}
		if j, err := e.repo.ErasureJob(ctx, acct.ID, p); err != nil || j != nil {
			return j, j != nil, err
		}
		if domain.IsPseudonym(root) {
			// The erasure that aliased the address here finished meanwhile: start over.
			continue
		}
		j, err := e.startOnce(ctx, acct, email, root, p, by, hash)
		if err == nil {
			return j, false, nil
		}
		if !errors.Is(err, store.ErrConditionFailed) && !errors.Is(err, store.ErrConflict) {
			return nil, false, err
		}
		lastErr = err
	}
	return nil, false, fmt.Errorf("the contact kept changing while its erasure started; try again: %w", lastErr)
}

// members loads the contact's partitions: its email now first, then the addresses it had that
// lead to it (those still moving to it after an email change, and its previous emails), and
// the address asked for. A previous email that leads elsewhere now (it changed back, and is
// another contact) is not this contact's.
func (e *Eraser) members(ctx context.Context, account, email, root string, cache map[string]*history.ContactState) ([]*history.ContactState, error) {
	load := loader(e.repo, account, cache)
	c, err := load(ctx, root)
	if err != nil {
		return nil, err
	}
	emails := []string{root}
	add := func(x string) error {
		if x == "" || slices.Contains(emails, x) || domain.IsPseudonym(x) {
			return nil
		}
		to, err := e.repo.ResolveEmail(ctx, account, x)
		if err != nil {
			return err
		}
		if to == root {
			emails = append(emails, x)
		}
		return nil
	}
	moving, err := e.repo.MovingInto(ctx, account, root)
	if err != nil {
		return nil, err
	}
	for _, x := range append(append(moving, c.Profile.PreviousEmails...), email) {
		if err := add(x); err != nil {
			return nil, err
		}
	}
	out := make([]*history.ContactState, 0, len(emails))
	for _, x := range emails {
		m, err := load(ctx, x)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// loader reads contacts once per attempt, so that one read twice is one value (reports.Stage
// sees the changes made to it).
func loader(repo *history.Repo, account string, cache map[string]*history.ContactState) reports.Loader {
	return func(ctx context.Context, email string) (*history.ContactState, error) {
		if c, ok := cache[email]; ok {
			return c, nil
		}
		c, err := repo.LoadContact(ctx, account, email)
		if err != nil {
			return nil, err
		}
		cache[email] = c
		return c, nil
	}
}

// startOnce is the first step, in one transaction: every partition of the contact is marked as
// being erased (which stops ingest and the forwarders), its profile goes, a pending email move
// is taken over, and the pseudonym's contact counts every one of its records from now on (as
// an email change does: the records follow in steps), with a profile of their aggregates and
// nothing personal. The reports move the contact's contribution to the pseudonym in the same
// transaction.
func (e *Eraser) startOnce(ctx context.Context, acct accounts.Account, email, root, p, by string, hash func(string) string) (*history.ErasureJob, error) {
	cache := map[string]*history.ContactState{}
	load := loader(e.repo, acct.ID, cache)
	members, err := e.members(ctx, acct.ID, email, root, cache)
	if err != nil {
		return nil, err
	}
	pc, err := load(ctx, p)
	if err != nil {
		return nil, err
	}
	now := e.d.Clock.Now().UTC()
	job := &history.ErasureJob{Account: acct.ID, Pseudonym: p, At: now, By: by, Phase: history.ErasureRecords}
	for _, m := range members {
		job.Emails = append(job.Emails, m.Email)
		job.Tokens = append(job.Tokens, hash(m.Email))
	}
	job.Counts.Addresses = len(job.Emails)
	w := &history.Writes{}
	var orders []domain.Order
	var subs []domain.Subscription
	customers := map[string]bool{}
	destIDs := map[string]string{}
	// The contact's first page view counts in the reports; the pseudonym takes it over, so
	// they count the same.
	view := pc.FirstView
	for _, m := range members {
		if v := m.FirstView; v != nil {
			if view == nil || v.At.Before(view.At) {
				view = v
			}
			w.DeleteFirstView(m)
			m.FirstView = nil
		}
	}
	if view != nil && view != pc.FirstView {
		w.PutFirstView(pc, *view)
		pc.FirstView = view
	}
	for _, m := range members {
		w.PutErasing(acct.ID, m.Email, p)
		if m.ProfileVersion > 0 {
			w.DeleteProfile(m)
			for _, id := range m.Profile.CustomerIDs {
				customers[id] = true
			}
			for k, v := range m.Profile.DestinationIDs {
				destIDs[k] = v
			}
		}
		for _, from := range m.MovingFrom {
			w.DeleteMoveIn(acct.ID, m.Email, from)
		}
		m.MovingFrom = nil
		if moving, err := e.repo.HasMove(ctx, acct.ID, m.Email); err != nil {
			return nil, err
		} else if moving {
			w.DeleteMoveJob(acct.ID, m.Email)
		}
		for _, o := range m.OrderList() {
			orders = append(orders, domain.PseudonymizeOrder(o, p, job.Emails...))
			if o.CustomerID != "" {
				customers[string(o.Source)+":"+o.CustomerID] = true
			}
		}
		for _, s := range m.SubList() {
			subs = append(subs, domain.PseudonymizeSubscription(s, p, job.Emails...))
		}
	}
	for id := range customers {
		job.CustomerIDs = append(job.CustomerIDs, id)
	}
	slices.Sort(job.CustomerIDs)
	if len(destIDs) > 0 {
		job.DestinationIDs = destIDs
	}
	w.PutErasing(acct.ID, p, p)
	c := members[0]
	w.PutAlias(acct.ID, root, p, now)
	c.AliasOf = p
	for _, m := range members {
		w.PutMoveIn(acct.ID, p, m.Email, now)
		pc.MovingFrom = append(pc.MovingFrom, m.Email)
	}
	base := pc.Profile
	if pc.ProfileVersion == 0 {
		base = domain.Contact{Account: acct.ID, Email: p}
	}
	base.ErasedAt = now
	for k, v := range destIDs {
		if base.DestinationIDs == nil {
			base.DestinationIDs = map[string]string{}
		}
		base.DestinationIDs[k] = v
	}
	prof := ledger.Aggregate(base, append(pc.OrderList(), orders...), append(pc.SubList(), subs...))
	w.PutProfile(pc, prof)
	pc.Profile = prof
	for _, d := range enabled(acct) {
		for i, m := range job.Emails {
			job.Requests = append(job.Requests, history.ErasureRequest{Dest: d,
				FactID: domain.ContactErasedID(acct.ID, job.Tokens[i], now), Group: m})
		}
	}
	w.PutErasureJob(job)
	// The audit log records the start in the same transaction: no erasure goes unrecorded. It
	// names the pseudonym, never an address.
	entry, err := audit.Put(audit.Entry{Account: acct.ID, At: now, Actor: by, Action: audit.EraseContact, Target: p,
		Summary: fmt.Sprintf("erasure of a contact started: %d address(es), %d order(s) and %d subscription(s) kept under its pseudonym",
			len(job.Emails), len(orders), len(subs)), Outcome: "started"})
	if err != nil {
		return nil, err
	}
	w.Append(entry)
	staged, err := reports.Stage(ctx, e.d.Store, acct.ID, acct.Timezone, w, load, nil, 0, now)
	if err != nil {
		return nil, err
	}
	if err := e.repo.Commit(ctx, w); err != nil {
		return nil, err
	}
	job.Written()
	if err := reports.Finish(ctx, e.d.Store, staged); err != nil {
		e.d.Log.Warn("pending rollup writes not applied yet", slog.String("account", acct.ID), slog.Any("error", err))
	}
	return job, nil
}
