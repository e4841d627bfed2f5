package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cartrelay/cartrelay/shared/store"
)

// wantTxErr checks that err is a *store.TransactionError listing exactly want.
func wantTxErr(t *testing.T, err error, want []store.FailedWrite) {
	t.Helper()
	if err == nil {
		t.Fatalf("transaction succeeded, want failed conditions at %v", indexes(want))
	}
	var te *store.TransactionError
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *store.TransactionError", err, err)
	}
	if !errors.Is(err, store.ErrConditionFailed) {
		t.Fatalf("error %v does not match store.ErrConditionFailed", err)
	}
	if te.Cause != nil {
		t.Fatalf("transaction error has a cause besides its conditions: %v", te.Cause)
	}
	got := slices.Clone(te.Failed)
	slices.SortFunc(got, func(a, b store.FailedWrite) int { return a.Index - b.Index })
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		g, w := got[i], want[i]
		same = g.Index == w.Index && g.Key == w.Key && g.Cond == w.Cond && (w.Cond != store.VersionEquals || g.Expect == w.Expect)
	}
	if !same {
		t.Fatalf("transaction error lists %v, want %v", failures(got), failures(want))
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), fmt.Sprintf("write %d: ", w.Index)) || !strings.Contains(err.Error(), w.Key.String()) {
			t.Fatalf("error %q does not name write %d on %s", err, w.Index, w.Key)
		}
	}
}

func indexes(fs []store.FailedWrite) []int {
	var out []int
	for _, f := range fs {
		out = append(out, f.Index)
	}
	return out
}

func failures(fs []store.FailedWrite) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("#%d %s %s %d", f.Index, f.Key, f.Cond, f.Expect))
	}
	return out
}

func testTransact(t *testing.T, open Opener) {
	t.Run("the largest transaction", func(t *testing.T) {
		h := newParallel(t, open)
		var puts, deletes []store.Write
		for i := range store.MaxTransactWrites {
			it := store.Item{PK: h.pk("C"), SK: fmt.Sprintf("%03d", i), GSI1PK: h.pk("G"), GSI1SK: fmt.Sprintf("%03d", i), Version: 1, Data: []byte{byte(i)}}
			puts = append(puts, store.PutItem(it, store.NotExists))
			deletes = append(deletes, store.DeleteKey(puts[i].Target(), store.VersionEquals))
			deletes[i].Expect = 1
		}
		if err := h.s.Transact(h.ctx, puts); err != nil {
			t.Fatalf("transaction of %d puts: %v", len(puts), err)
		}
		if got := h.queryAll(store.Query{PK: h.pk("C")}); len(got) != store.MaxTransactWrites {
			t.Fatalf("after the transaction the partition holds %d items, want %d", len(got), store.MaxTransactWrites)
		}
		if got := h.queryAll(store.Query{Index: store.GSI1, PK: h.pk("G")}); len(got) != store.MaxTransactWrites {
			t.Fatalf("after the transaction gsi1 holds %d items, want %d", len(got), store.MaxTransactWrites)
		}
		wantItem(t, h.get(h.pk("C"), "042"), puts[42].Item)
		if err := h.s.Transact(h.ctx, deletes); err != nil {
			t.Fatalf("transaction of %d deletes: %v", len(deletes), err)
		}
		wantSKs(t, "after deleting them all", h.queryAll(store.Query{PK: h.pk("C")}), nil)
	})

	t.Run("a failed condition writes nothing", func(t *testing.T) {
		h := newParallel(t, open)
		pk := h.pk("C")
		key := func(i int) store.Key { return store.Key{PK: pk, SK: fmt.Sprintf("K%02d", i)} }
		item := func(i int, v int64) store.Item {
			return store.Item{PK: pk, SK: key(i).SK, GSI2PK: h.pk("G"), GSI2SK: key(i).SK, Version: v, Data: []byte("new")}
		}
		// Stored beforehand: K03, K05, K07, K09 at version 1.
		for _, i := range []int{3, 5, 7, 9} {
			h.put(store.Item{PK: pk, SK: key(i).SK, Version: 1, Data: []byte("old")})
		}
		before := h.queryAll(store.Query{PK: pk})
		ws := []store.Write{
			store.PutItem(item(0, 1), store.NotExists),
			store.PutItem(item(1, 1), store.Always),
			store.PutItem(item(2, 1), store.NotExists),
			store.PutItem(item(3, 1), store.NotExists), // fails: K03 exists
			store.PutIfVersion(item(5, 2), 1),          // holds
			store.DeleteKey(key(6), store.Always),
			store.DeleteKey(key(7), store.Exists),                                   // holds
			{Op: store.OpDelete, Key: key(9), Cond: store.VersionEquals, Expect: 4}, // fails: version 1
			store.Check(key(8), store.Exists, 0),                                    // fails: absent
			store.PutItem(item(10, 1), store.NotExists),
		}
		err := h.s.Transact(h.ctx, ws)
		wantTxErr(t, err, []store.FailedWrite{
			{Index: 3, ConditionError: store.ConditionError{Key: key(3), Cond: store.NotExists}},
			{Index: 7, ConditionError: store.ConditionError{Key: key(9), Cond: store.VersionEquals, Expect: 4}},
			{Index: 8, ConditionError: store.ConditionError{Key: key(8), Cond: store.Exists}},
		})
		after := h.queryAll(store.Query{PK: pk})
		if len(after) != len(before) {
			t.Fatalf("partition went from %v to %v", sks(before), sks(after))
		}
		for i := range after {
			wantItem(t, after[i], before[i])
		}
		wantSKs(t, "gsi2", h.queryAll(store.Query{Index: store.GSI2, PK: h.pk("G")}), nil)
	})

	t.Run("only a check fails", func(t *testing.T) {
		h := newParallel(t, open)
		lease := store.Key{PK: h.pk("A"), SK: "CUR#ultracart#orders"}
		h.put(store.Item{PK: lease.PK, SK: lease.SK, Version: 5})
		put := store.PutItem(store.Item{PK: h.pk("A"), SK: "O#1"}, store.NotExists)
		err := h.s.Transact(h.ctx, []store.Write{put, store.Check(lease, store.VersionEquals, 4)})
		wantTxErr(t, err, []store.FailedWrite{{Index: 1, ConditionError: store.ConditionError{Key: lease, Cond: store.VersionEquals, Expect: 4}}})
		h.absent(h.pk("A"), "O#1")

		if err := h.s.Transact(h.ctx, []store.Write{put, store.Check(lease, store.VersionEquals, 5)}); err != nil {
			t.Fatalf("with the right version: %v", err)
		}
		h.get(h.pk("A"), "O#1")
		if got := h.get(lease.PK, lease.SK); got.Version != 5 {
			t.Fatalf("a check changed the item: version %d", got.Version)
		}
	})

	t.Run("requests rejected before writing", func(t *testing.T) {
		h := newParallel(t, open)
		put := func(sk string) store.Write { return store.PutItem(store.Item{PK: h.pk("C"), SK: sk}, store.Always) }
		var tooMany []store.Write
		for i := range store.MaxTransactWrites + 1 {
			tooMany = append(tooMany, put(fmt.Sprint(i)))
		}
		cases := []struct {
			name string
			ws   []store.Write
		}{
			{"empty", nil},
			{"one more than the limit", tooMany},
			{"two puts on one key", []store.Write{put("A"), put("B"), put("A")}},
			{"a put and a delete on one key", []store.Write{put("A"), store.DeleteKey(store.Key{PK: h.pk("C"), SK: "A"}, store.Always)}},
			{"a put and a check on one key", []store.Write{put("A"), store.Check(store.Key{PK: h.pk("C"), SK: "A"}, store.Exists, 0)}},
			{"an invalid write", []store.Write{put("A"), put("")}},
		}
		for _, tc := range cases {
			wantInvalid(t, tc.name, h.s.Transact(h.ctx, tc.ws))
		}
		wantSKs(t, "nothing written", h.queryAll(store.Query{PK: h.pk("C")}), nil)
		if err := h.s.Transact(h.ctx, []store.Write{put("A"), put("B")}); err != nil {
			t.Fatal(err)
		}
	})
}

// testConcurrency checks optimistic concurrency under contention: VersionEquals must let
// exactly one writer win each version.
func testConcurrency(t *testing.T, open Opener) {
	t.Run("counter", func(t *testing.T) {
		h := newParallel(t, open)
		const workers, each = 8, 10
		key := store.Key{PK: h.pk("A"), SK: "CUR#counter"}
		h.put(store.Item{PK: key.PK, SK: key.SK, Version: 0, Data: []byte("0")})

		var (
			mu      sync.Mutex
			winners = map[int64]int{}
			lost    int
			wg      sync.WaitGroup
			errs    = make(chan error, workers)
		)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for done := 0; done < each; {
					cur, err := h.s.Get(h.ctx, key.PK, key.SK)
					if err != nil {
						errs <- fmt.Errorf("worker %d: %w", w, err)
						return
					}
					next := cur
					next.Version++
					next.Data = fmt.Append(nil, next.Version)
					err = h.s.Write(h.ctx, store.PutIfVersion(next, cur.Version))
					var ce *store.ConditionError
					switch {
					case err == nil:
						mu.Lock()
						winners[next.Version]++
						mu.Unlock()
						done++
					case errors.As(err, &ce):
						mu.Lock()
						lost++
						mu.Unlock()
					default:
						errs <- fmt.Errorf("worker %d: %w", w, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			return
		}
		got := h.get(key.PK, key.SK)
		if got.Version != workers*each || string(got.Data) != fmt.Sprint(workers*each) {
			t.Fatalf("counter ended at version %d data %q, want %d", got.Version, got.Data, workers*each)
		}
		for v := int64(1); v <= workers*each; v++ {
			if winners[v] != 1 {
				t.Fatalf("version %d was won %d times, want exactly once", v, winners[v])
			}
		}
		t.Logf("%d increments, %d lost races", workers*each, lost)
	})

	t.Run("create once", func(t *testing.T) {
		h := newParallel(t, open)
		const racers = 16
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			won  []int
			errs []error
		)
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := h.s.Write(h.ctx, store.PutItem(store.Item{PK: h.pk("ST#state"), SK: "-", Data: fmt.Append(nil, i)}, store.NotExists))
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					won = append(won, i)
				} else if !errors.Is(err, store.ErrConditionFailed) {
					errs = append(errs, err)
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("unexpected errors: %v", errs)
		}
		if len(won) != 1 {
			t.Fatalf("%d racers created the item, want exactly 1", len(won))
		}
		if got := h.get(h.pk("ST#state"), "-"); string(got.Data) != fmt.Sprint(won[0]) {
			t.Fatalf("stored data %q, but racer %d won", got.Data, won[0])
		}
	})

	t.Run("transactions on overlapping keys", func(t *testing.T) {
		h := newParallel(t, open)
		// Each transaction moves one unit from one account to the next under version checks;
		// conflicts may fail some, but the total must never change.
		const accounts, movers, moves = 4, 6, 8
		for i := range accounts {
			h.put(store.Item{PK: h.pk("BAL"), SK: fmt.Sprint(i), Version: 1, Data: []byte("100")})
		}
		var wg sync.WaitGroup
		errs := make(chan error, movers)
		for m := range movers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range moves {
					from, to := fmt.Sprint((m+j)%accounts), fmt.Sprint((m+j+1)%accounts)
					a, err1 := h.s.Get(h.ctx, h.pk("BAL"), from)
					b, err2 := h.s.Get(h.ctx, h.pk("BAL"), to)
					if err := errors.Join(err1, err2); err != nil {
						errs <- err
						return
					}
					na, nb := a, b
					na.Version, nb.Version = a.Version+1, b.Version+1
					na.Data, nb.Data = fmt.Append(nil, atoi(a.Data)-1), fmt.Append(nil, atoi(b.Data)+1)
					err := h.s.Transact(h.ctx, []store.Write{store.PutIfVersion(na, a.Version), store.PutIfVersion(nb, b.Version)})
					var te *store.TransactionError
					if err != nil && !errors.As(err, &te) {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		total := 0
		for _, it := range h.queryAll(store.Query{PK: h.pk("BAL")}) {
			total += atoi(it.Data)
		}
		if total != accounts*100 {
			t.Fatalf("balances sum to %d after concurrent transactions, want %d", total, accounts*100)
		}
	})
}

func atoi(b []byte) int {
	n, _ := strconv.Atoi(string(b)) // the suite wrote these numbers itself
	return n
}
