package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/store"
)

// An email change moves a contact's history from its old partition to the new email's. A
// long-time customer has more records than one transaction holds, so the move is a job: the
// change itself is one small transaction (the alias, so new events already route to the new
// email; the new profile, aggregated over both partitions; the EmailChanged fact; the job), and
// the records follow in steps of at most MoveBatch, each one transaction, until the old
// partition holds nothing but its alias. A step that dies leaves the job where it was; the next
// one (ingest right after the change, or the schedule every minute) carries on.
//
// Keys: the job is item MOVE in the old contact's partition (GSI1 "MOVES" lists every pending
// job), and item MOVEIN#<old> in the new contact's partition tells whoever aggregates the new
// contact that part of its history still lives under <old>.

const (
	skMove       = "MOVE"
	prefMoveIn   = "MOVEIN#"
	movesGSI1    = "MOVES"
	movesGSI1Sep = "#"
)

// MoveBatch is how many records one step moves: two writes each (delete, put), plus the new
// profile's version bump and the job's progress, within DynamoDB's 100 writes a transaction.
const MoveBatch = 45

// movable are the kinds of item a move carries: orders, subscriptions, carts, the fact log, the
// outbox and the delivery log. The profile, alias and job stay.
var movable = []string{prefOrder, prefSub, prefCart, prefFact, prefOutbox, prefDeliv}

// Move is an email change whose records are still moving.
type Move struct {
	Account string `json:"account"`
	From    string `json:"from"`
	// To is the email the change reported. A later change can move the contact on again; a
	// step moves the records to wherever To resolves then.
	To string    `json:"to"`
	At time.Time `json:"at"`
	// Moved counts the records moved so far.
	Moved int `json:"moved"`
	// version is the job item's version, for the step's guard.
	version int64
}

// StartMove records a move of from's records to to, with the marker that makes to's aggregates
// include from's records until they have moved.
func (w *Writes) StartMove(account, from, to string, at time.Time) {
	m := Move{Account: account, From: from, To: to, At: at}
	w.add(store.PutItem(store.Item{PK: ContactPK(account, from), SK: skMove, Version: 1,
		GSI1PK: movesGSI1, GSI1SK: account + movesGSI1Sep + from, Data: mustJSON(m)}, store.Always))
	w.add(store.PutItem(store.Item{PK: ContactPK(account, to), SK: prefMoveIn + from,
		Data: mustJSON(map[string]any{"from": from, "at": at})}, store.Always))
}

// DeleteAlias makes an email a contact of its own again (an email change back to an address
// that had moved away).
func (w *Writes) DeleteAlias(account, email string) {
	w.add(store.DeleteKey(store.Key{PK: ContactPK(account, email), SK: skAlias}, store.Always))
}

// PendingMoves lists the moves not finished yet, of every account.
func (r *Repo) PendingMoves(ctx context.Context) ([]Move, error) {
	items, err := store.QueryAll(ctx, r.s, store.Query{Index: store.GSI1, PK: movesGSI1})
	if err != nil {
		return nil, fmt.Errorf("list pending email moves: %w", err)
	}
	out := make([]Move, 0, len(items))
	for _, it := range items {
		var m Move
		if err := json.Unmarshal(it.Data, &m); err != nil {
			return nil, fmt.Errorf("email move %s is unreadable: %w", it.PK, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// MovingInto lists the emails whose records are still moving into email's contact, directly or
// through a chain of changes (a→b still moving while b→c moves too), without email itself.
func (r *Repo) MovingInto(ctx context.Context, account, email string) ([]string, error) {
	var out []string
	seen := map[string]bool{email: true}
	queue := []string{email}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		items, err := store.QueryAll(ctx, r.s, store.Query{PK: ContactPK(account, e), SKPrefix: prefMoveIn})
		if err != nil {
			return nil, fmt.Errorf("read email moves into %s: %w", e, err)
		}
		for _, it := range items {
			from := strings.TrimPrefix(it.SK, prefMoveIn)
			if !seen[from] {
				seen[from] = true
				out = append(out, from)
				queue = append(queue, from)
			}
		}
	}
	return out, nil
}

// MoveStepResult says what one step did.
type MoveStepResult struct {
	// To is where the records went.
	To string
	// Moved is how many records this step moved; Outbox how many of them were unsent facts,
	// which the caller sends from the new contact.
	Moved, Outbox int
	// Done is true once nothing is left to move and the job is gone.
	Done bool
}

// ErrMoveGone is returned by MoveStep when the job no longer exists (another process finished it).
var ErrMoveGone = errors.New("the email move is finished already")

// MoveStep moves up to batch records of the move from the old contact's partition to the new
// one, in one transaction, or finishes the job when none is left. Records keep their sort keys,
// indexes, versions and expiry; the email recorded in carts, facts and deliveries becomes the
// new one (orders and subscriptions keep the email their source reported; they are found through
// the alias). Every step also bumps the new contact's profile version: an ingest that read the
// two partitions around it then fails its guarded write and reads them again, so it never
// aggregates a record twice or not at all. A lost race comes back as store.ErrConditionFailed.
func (r *Repo) MoveStep(ctx context.Context, account, from string, batch int) (MoveStepResult, error) {
	if batch <= 0 || batch > MoveBatch {
		batch = MoveBatch
	}
	job, err := r.s.Get(ctx, ContactPK(account, from), skMove)
	if errors.Is(err, store.ErrNotFound) {
		return MoveStepResult{Done: true}, ErrMoveGone
	}
	if err != nil {
		return MoveStepResult{}, fmt.Errorf("read the email move of %s: %w", from, err)
	}
	var m Move
	if err := json.Unmarshal(job.Data, &m); err != nil {
		return MoveStepResult{}, fmt.Errorf("email move of %s is unreadable: %w", from, err)
	}
	m.version = job.Version
	to, err := r.ResolveEmail(ctx, account, m.To)
	if err != nil {
		return MoveStepResult{}, err
	}
	res := MoveStepResult{To: to}
	var items []store.Item
	if to != from {
		// A later change back to the old address makes it the contact again: nothing moves.
		for _, p := range movable {
			q := store.Query{PK: ContactPK(account, from), SKPrefix: p, Limit: batch - len(items)}
			page, err := r.s.Query(ctx, q)
			if err != nil {
				return MoveStepResult{}, fmt.Errorf("read %s's records to move: %w", from, err)
			}
			items = append(items, page.Items...)
			if len(items) >= batch {
				items = items[:batch]
				break
			}
		}
	}
	w := &Writes{}
	if len(items) == 0 {
		// Nothing left: the old partition keeps only its alias.
		w.add(store.Write{Op: store.OpDelete, Key: store.Key{PK: ContactPK(account, from), SK: skMove}, Cond: store.VersionEquals, Expect: m.version})
		w.add(store.DeleteKey(store.Key{PK: ContactPK(account, m.To), SK: prefMoveIn + from}, store.Always))
		if to != m.To {
			w.add(store.DeleteKey(store.Key{PK: ContactPK(account, to), SK: prefMoveIn + from}, store.Always))
		}
		if err := r.Commit(ctx, w); err != nil {
			return MoveStepResult{}, err
		}
		res.Done = true
		return res, nil
	}
	for _, it := range items {
		moved, err := rehome(it, ContactPK(account, to), from, to)
		if err != nil {
			return MoveStepResult{}, fmt.Errorf("move %s of %s: %w", it.SK, from, err)
		}
		w.add(store.Write{Op: store.OpDelete, Key: store.Key{PK: it.PK, SK: it.SK}, Cond: store.VersionEquals, Expect: it.Version})
		w.add(store.PutItem(moved, store.Always))
		if strings.HasPrefix(it.SK, prefOutbox) {
			res.Outbox++
		}
	}
	if p, err := r.s.Get(ctx, ContactPK(account, to), skProfile); err == nil {
		// Same profile, new version: see the doc comment.
		w.add(guard(p, p.Version))
	} else if !errors.Is(err, store.ErrNotFound) {
		return MoveStepResult{}, fmt.Errorf("read the profile of %s: %w", to, err)
	}
	m.Moved += len(items)
	w.add(guard(store.Item{PK: job.PK, SK: skMove, GSI1PK: job.GSI1PK, GSI1SK: job.GSI1SK, Data: mustJSON(m)}, m.version))
	if err := r.Commit(ctx, w); err != nil {
		return MoveStepResult{}, err
	}
	res.Moved = len(items)
	return res, nil
}

// rehome is it under the new contact's partition. The top-level email of a cart, fact or
// delivery document becomes the new one, so a replay from the log goes to the contact as it is
// now.
func rehome(it store.Item, pk, from, to string) (store.Item, error) {
	it.PK = pk
	if !slices.ContainsFunc([]string{prefCart, prefFact, prefOutbox, prefDeliv}, func(p string) bool { return strings.HasPrefix(it.SK, p) }) {
		return it, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(it.Data, &doc); err != nil {
		return it, err
	}
	var email string
	if raw, ok := doc["email"]; !ok || json.Unmarshal(raw, &email) != nil || email != from {
		return it, nil
	}
	doc["email"], _ = json.Marshal(to)
	data, err := json.Marshal(doc)
	if err != nil {
		return it, err
	}
	it.Data = data
	return it, nil
}
