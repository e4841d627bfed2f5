package reports

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Pending rollup adds: a change whose rollup writes do not all fit in its transaction (an email
// change moving a long-time customer's history, a backfilled first order that changes every
// later order's cohort) commits the rest as pending items in that same transaction. They are
// applied right after the commit, and whatever a crash leaves behind is applied by the next
// drain (the schedule runs one every minute), each add exactly once: an add leaves its pending
// item in the same transaction that applies it.

// pendingGSI1 lists pending items of every account, for the schedule to find.
const pendingGSI1 = "RPENDING"

// maxPendingAdds bounds one pending item; at most a few hundred KB, under the item size limit.
const maxPendingAdds = 400

func pendingPK(account string) string { return "A#" + account + "#R#P" }

// pendingWrite is one deferred write: an add, or an unconditional put or delete (of a drill-down
// index entry).
type pendingWrite struct {
	Op   string            `json:"op,omitempty"` // "" add, "put", "delete"
	PK   string            `json:"pk"`
	SK   string            `json:"sk"`
	Add  map[string]int64  `json:"add,omitempty"`
	Set  map[string]string `json:"set,omitempty"`
	Data []byte            `json:"data,omitempty"`
}

func toPending(w store.Write) pendingWrite {
	switch w.Op {
	case store.OpPut:
		return pendingWrite{Op: "put", PK: w.Item.PK, SK: w.Item.SK, Data: w.Item.Data}
	case store.OpDelete:
		return pendingWrite{Op: "delete", PK: w.Key.PK, SK: w.Key.SK}
	}
	return pendingWrite{PK: w.Key.PK, SK: w.Key.SK, Add: w.Add, Set: w.Set}
}

func (p pendingWrite) write() store.Write {
	k := store.Key{PK: p.PK, SK: p.SK}
	switch p.Op {
	case "put":
		return store.PutItem(store.Item{PK: p.PK, SK: p.SK, Data: p.Data}, store.Always)
	case "delete":
		return store.DeleteKey(k, store.Always)
	}
	return store.AddTo(k, p.Add, p.Set)
}

type pendingDoc struct {
	Writes []pendingWrite `json:"writes"`
}

func newPendingSK(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%020d#%s", now.UnixNano(), hex.EncodeToString(b[:]))
}

// pendingItems puts writes into pending items of at most maxPendingAdds each.
func pendingItems(account string, now time.Time, ws []store.Write) []store.Item {
	var out []store.Item
	for len(ws) > 0 {
		n := min(len(ws), maxPendingAdds)
		doc := pendingDoc{Writes: make([]pendingWrite, n)}
		for i, w := range ws[:n] {
			doc.Writes[i] = toPending(w)
		}
		ws = ws[n:]
		data, _ := json.Marshal(doc)
		sk := newPendingSK(now)
		out = append(out, store.Item{PK: pendingPK(account), SK: sk, GSI1PK: pendingGSI1, GSI1SK: account + "#" + sk, Version: 1, Data: data})
	}
	return out
}

// PendingCount is how many pending items an account has.
func PendingCount(ctx context.Context, st store.Store, account string) (int, error) {
	items, err := store.QueryAll(ctx, st, store.Query{PK: pendingPK(account)})
	return len(items), err
}

// DrainPending applies an account's pending rollup adds (all of them when sks is empty) and
// returns how many adds it applied.
func DrainPending(ctx context.Context, st store.Store, account string, sks ...string) (int, error) {
	if len(sks) == 0 {
		items, err := store.QueryAll(ctx, st, store.Query{PK: pendingPK(account)})
		if err != nil {
			return 0, fmt.Errorf("list pending rollup adds of %s: %w", account, err)
		}
		for _, it := range items {
			sks = append(sks, it.SK)
		}
	}
	total := 0
	for _, sk := range sks {
		n, err := drainOne(ctx, st, account, sk)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// DrainAllPending applies the pending rollup adds of every account.
func DrainAllPending(ctx context.Context, st store.Store) (int, error) {
	items, err := store.QueryAll(ctx, st, store.Query{Index: store.GSI1, PK: pendingGSI1})
	if err != nil {
		return 0, fmt.Errorf("list pending rollup adds: %w", err)
	}
	total := 0
	for _, it := range items {
		account := ""
		if i := len(it.GSI1SK) - len(it.SK) - 1; i > 0 {
			account = it.GSI1SK[:i]
		}
		n, err := drainOne(ctx, st, account, it.SK)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func drainOne(ctx context.Context, st store.Store, account, sk string) (int, error) {
	applied := 0
	for attempt := 0; ; attempt++ {
		it, err := st.Get(ctx, pendingPK(account), sk)
		if errors.Is(err, store.ErrNotFound) {
			return applied, nil // applied already, here or by another process
		}
		if err != nil {
			return applied, err
		}
		var doc pendingDoc
		if err := json.Unmarshal(it.Data, &doc); err != nil {
			return applied, fmt.Errorf("pending rollup adds %s of %s are unreadable: %w", sk, account, err)
		}
		// One transaction: as many adds as fit, on distinct items, and the pending item either
		// deleted or rewritten with the rest, under its version.
		var ws []store.Write
		var rest []pendingWrite
		used := map[store.Key]bool{}
		for _, a := range doc.Writes {
			k := store.Key{PK: a.PK, SK: a.SK}
			if len(ws) == store.MaxTransactWrites-1 || used[k] {
				rest = append(rest, a)
				continue
			}
			used[k] = true
			ws = append(ws, a.write())
		}
		if len(rest) == 0 {
			ws = append(ws, store.Write{Op: store.OpDelete, Key: store.Key{PK: it.PK, SK: it.SK}, Cond: store.VersionEquals, Expect: it.Version})
		} else {
			next := it
			next.Data, _ = json.Marshal(pendingDoc{Writes: rest})
			next.Version = it.Version + 1
			ws = append(ws, store.PutIfVersion(next, it.Version))
		}
		err = st.Transact(ctx, ws)
		switch {
		case err == nil:
			applied += len(ws) - 1
			if len(rest) == 0 {
				return applied, nil
			}
			attempt = 0
		case errors.Is(err, store.ErrConditionFailed), errors.Is(err, store.ErrConflict):
			if attempt >= 8 {
				return applied, fmt.Errorf("apply pending rollup adds %s of %s: %w", sk, account, err)
			}
			if err := clock.Sleep(ctx, time.Duration(attempt+1)*20*time.Millisecond); err != nil {
				return applied, err
			}
		default:
			return applied, fmt.Errorf("apply pending rollup adds %s of %s: %w", sk, account, err)
		}
	}
}
