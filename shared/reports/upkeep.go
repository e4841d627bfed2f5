package reports

import (
	"context"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Staged is what Stage added to a change's transaction that needs a follow-up once it commits.
type Staged struct {
	Account string
	// Pending are the pending items written with the change, to apply after the commit.
	Pending []string
	// Writes counts the rollup writes in the transaction (adds, and pending items).
	Writes int
}

// Loader reads a contact by email. Ingest passes its per-attempt cache, so a contact read twice
// is one value.
type Loader func(ctx context.Context, email string) (*history.ContactState, error)

// Stage adds to w, the writes of one change to an account's history, the change of the
// contacts' contributions to the rollups: adds to the rollup items, in the same transaction, so
// they count exactly when the change does. The transaction's version checks make a duplicate or
// stale event (which changes nothing) contribute nothing, and a lost race re-run from scratch.
//
// A contact counts as a whole with the records still moving into it after an email change (see
// history.MoveStep), so moving them changes nothing here; load reads the partitions a change did
// not touch. zone is the account's time zone, used only if the account has no rollup state yet.
// salt moves ingest's writes to other shards (when an item has grown too large). What does not
// fit in the transaction is written as pending items, which the caller applies with Finish once
// committed. zones, when set, keeps the calendars of the zones it has loaded.
func Stage(ctx context.Context, st store.Store, account, zone string, w *history.Writes, load Loader, zones *rollup.Zones, salt int, now time.Time) (Staged, error) {
	staged := Staged{Account: account}
	contacts := w.Contacts()
	if len(contacts) == 0 {
		return staged, nil
	}
	state, err := LoadState(ctx, st, account, zone)
	if err != nil {
		return staged, err
	}
	targets, err := state.targets(now, zones)
	if err != nil {
		return staged, err
	}
	g, err := groupsOf(ctx, load, contacts)
	if err != nil {
		return staged, err
	}
	var ws []store.Write
	for _, t := range targets {
		d := rollup.NewDelta()
		g.diff(t.cal, inLayout(t.gen, d))
		for _, a := range d.Adds(account, t.gen.N, uint16(salt*rollup.Shards)) {
			ws = append(ws, a.Write())
		}
	}
	if len(ws) > 0 {
		// Whatever else this change writes, the contacts it counted are guarded by their
		// versions, so a record moving between two of their partitions meanwhile makes it retry.
		for _, r := range g.after {
			w.TouchProfile(r.root)
		}
	}
	ws = append(refundIndexWrites(account, contacts), ws...)
	if len(ws) == 0 {
		return staged, nil
	}
	if state.Version == 0 {
		state.Created = now
		w.Append(state.write(account))
	}

	// As many writes as fit go into the transaction; the rest into pending items, which take
	// one write each. An item split into several adds has them in separate transactions.
	avail := store.MaxTransactWrites - w.Len()
	var inTx, later []store.Write
	used := map[store.Key]bool{}
	for _, x := range ws {
		k := x.Target()
		if used[k] || w.Has(k) {
			later = append(later, x)
			continue
		}
		inTx = append(inTx, x)
		used[k] = true
	}
	for len(inTx)+len(later) > 0 {
		chunks := (len(later) + maxPendingAdds - 1) / maxPendingAdds
		if len(inTx)+chunks <= avail || len(inTx) == 0 {
			break
		}
		later = append([]store.Write{inTx[len(inTx)-1]}, later...)
		inTx = inTx[:len(inTx)-1]
	}
	w.Append(inTx...)
	for _, it := range pendingItems(account, now, later) {
		w.Append(store.PutItem(it, store.NotExists))
		staged.Pending = append(staged.Pending, it.SK)
	}
	staged.Writes = len(inTx) + len(staged.Pending)
	return staged, nil
}

// Finish applies the pending adds a committed change left. A failure leaves them for the next
// drain; nothing is lost.
func Finish(ctx context.Context, st store.Store, s Staged) error {
	if len(s.Pending) == 0 {
		return nil
	}
	_, err := DrainPending(ctx, st, s.Account, s.Pending...)
	return err
}

// group is a contact as the rollups count it: the partition of its email (the root) and those
// of earlier emails whose records are still moving into it.
type group struct {
	root    *history.ContactState
	members []*history.ContactState // the root first
}

func (g group) contact(stored bool) rollup.Contact {
	c := rollup.Contact{Email: g.root.Email}
	nOrders, nSubs := 0, 0
	for _, m := range g.members {
		if stored {
			nOrders, nSubs = nOrders+len(m.StoredOrders), nSubs+len(m.StoredSubs)
		} else {
			nOrders, nSubs = nOrders+len(m.Orders), nSubs+len(m.Subs)
		}
	}
	c.Orders, c.Subs = make([]domain.Order, 0, nOrders), make([]domain.Subscription, 0, nSubs)
	for _, m := range g.members {
		v := m.FirstView
		if stored {
			c.Orders = appendValues(c.Orders, m.StoredOrders)
			c.Subs = appendValues(c.Subs, m.StoredSubs)
			v = m.StoredFirstView
		} else {
			c.Orders = appendValues(c.Orders, m.Orders)
			c.Subs = appendValues(c.Subs, m.Subs)
		}
		if v != nil && (c.View == nil || v.At.Before(c.View.At)) {
			c.View = &rollup.View{At: v.At, Source: v.Source}
		}
	}
	return c
}

func (g group) key() string {
	k := ""
	for _, m := range g.members {
		k += m.Email + "\x00"
	}
	return k
}

// groups are the contacts a change touched, as they were and as they are.
type groups struct {
	before, after map[string]group // by root email
}

// groupsOf finds the contacts that the touched partitions belong to, before and after.
func groupsOf(ctx context.Context, load Loader, touched []*history.ContactState) (groups, error) {
	g := groups{before: map[string]group{}, after: map[string]group{}}
	for _, stored := range []bool{true, false} {
		for _, c := range touched {
			gr, err := groupOf(ctx, load, c, stored)
			if err != nil {
				return g, err
			}
			if stored {
				g.before[gr.root.Email] = gr
			} else {
				g.after[gr.root.Email] = gr
			}
		}
	}
	return g, nil
}

func groupOf(ctx context.Context, load Loader, c *history.ContactState, stored bool) (group, error) {
	alias := func(c *history.ContactState) string {
		if stored {
			return c.StoredAliasOf
		}
		return c.AliasOf
	}
	from := func(c *history.ContactState) []string {
		if stored {
			return c.StoredMovingFrom
		}
		return c.MovingFrom
	}
	seen := map[string]bool{c.Email: true}
	for a := alias(c); a != "" && !seen[a]; a = alias(c) {
		seen[a] = true
		next, err := load(ctx, a)
		if err != nil {
			return group{}, err
		}
		c = next
	}
	gr := group{root: c, members: []*history.ContactState{c}}
	in := map[string]bool{c.Email: true}
	for i := 0; i < len(gr.members); i++ {
		for _, e := range from(gr.members[i]) {
			if in[e] {
				continue
			}
			in[e] = true
			m, err := load(ctx, e)
			if err != nil {
				return group{}, err
			}
			gr.members = append(gr.members, m)
		}
	}
	return gr, nil
}

// diff adds what the change did to the contacts' contributions.
func (g groups) diff(cal rollup.Calendar, d rollup.Sink) {
	same := len(g.before) == len(g.after)
	for e, b := range g.before {
		if a, ok := g.after[e]; !ok || a.key() != b.key() {
			same = false
		}
	}
	if same {
		for e, b := range g.before {
			rollup.Diff(cal, b.contact(true), g.after[e].contact(false), d)
		}
		return
	}
	// The contacts themselves changed (an email change joined two): count them again whole.
	for _, b := range g.before {
		rollup.Contribute(cal, b.contact(true), negated{d})
	}
	for _, a := range g.after {
		rollup.Contribute(cal, a.contact(false), d)
	}
}

// inLayout is s as generation g's layout has it: a generation written before month items
// existed gets none (nothing would read them, and nothing would delete them with it).
func inLayout(g Generation, s rollup.Sink) rollup.Sink {
	if g.hasMonths() {
		return s
	}
	return withoutMonths{s}
}

type withoutMonths struct{ rollup.Sink }

func (w withoutMonths) Add(k rollup.ItemKey, c rollup.Cell, m string, v int64) {
	if k.Part != rollup.PartMonth {
		w.Sink.Add(k, c, m, v)
	}
}

// negated adds what it receives, negated, to a Sink.
type negated struct{ rollup.Sink }

func (n negated) Add(k rollup.ItemKey, c rollup.Cell, m string, v int64) { n.Sink.Add(k, c, m, -v) }

// cachedRecords reads a contact's records (history.LoadRecords) once, keeping them in cache.
func cachedRecords(repo *history.Repo, account string, cache map[string]*history.ContactState) func(context.Context, string) (*history.ContactState, error) {
	return func(ctx context.Context, e string) (*history.ContactState, error) {
		if c, ok := cache[e]; ok {
			return c, nil
		}
		c, err := repo.LoadRecords(ctx, account, e)
		if err == nil {
			cache[e] = c
		}
		return c, err
	}
}

// LoadGroup reads the contact that email belongs to as the rollups count it: the email it lives
// under now and every partition still moving into it. It reads the records only (see
// history.LoadRecords): the result is for counting, not for writing back.
func LoadGroup(ctx context.Context, repo *history.Repo, account, email string) (*history.ContactState, rollup.Contact, error) {
	load := cachedRecords(repo, account, map[string]*history.ContactState{})
	c, err := load(ctx, email)
	if err != nil {
		return nil, rollup.Contact{}, err
	}
	g, err := groupOf(ctx, load, c, false)
	if err != nil {
		return nil, rollup.Contact{}, err
	}
	return g.root, g.contact(false), nil
}

func appendValues[V domain.Order | domain.Subscription](out []V, m map[string]V) []V {
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
