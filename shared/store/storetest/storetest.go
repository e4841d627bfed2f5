// Package storetest is the contract suite that every store.Store adapter must pass. The SQLite
// adapter runs it against a temporary file and the DynamoDB adapter against DynamoDB Local, so
// a repository written on the port behaves the same under `cartrelay serve` and in AWS.
//
// The suite never relies on expired items being deleted (DynamoDB Local never deletes them and
// DynamoDB only eventually): it moves a fake clock past the expiry and expects the adapter to
// hide the item. Every test writes under its own partition-key prefix, so all tests can share
// one table and run in parallel.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Opener returns a store under test whose notion of "now" is clk. It may be called many times,
// once per test; stores from different calls may share a backend (the suite keeps their keys
// apart).
type Opener func(t *testing.T, clk *clock.Fake) store.Store

// Run runs the whole contract suite against the stores that open returns.
func Run(t *testing.T, open func(t *testing.T, clk *clock.Fake) store.Store) {
	groups := []struct {
		name string
		run  func(*testing.T, Opener)
	}{
		{"RoundTrip", testRoundTrip},
		{"Conditions", testConditions},
		{"Expiry", testExpiry},
		{"Query", testQuery},
		{"Pagination", testPagination},
		{"Partitions", testPartitions},
		{"GSI", testGSI},
		{"Transact", testTransact},
		{"Concurrency", testConcurrency},
		{"Validation", testValidation},
		{"Add", testAdd},
		{"Forget", testForget},
		{"Sizes", testSizes},
		{"GetMany", testGetMany},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.run(t, open)
		})
	}
}

// start is the fake clock's first reading. It lies in the future so that, should the suite ever
// run against DynamoDB in AWS, its TTL process would not delete items the suite expects to
// still see.
func start() time.Time { return time.Date(2040, 1, 2, 3, 4, 5, 0, time.UTC) }

// harness is one parallel test's store, clock and key namespace.
type harness struct {
	t   *testing.T
	ctx context.Context
	clk *clock.Fake
	s   store.Store
	ns  string
}

// newParallel is newHarness for a subtest that runs in parallel with its siblings.
func newParallel(t *testing.T, open Opener) *harness {
	t.Helper()
	t.Parallel()
	return newHarness(t, open)
}

func newHarness(t *testing.T, open Opener) *harness {
	t.Helper()
	clk := clock.NewFake(start())
	return &harness{
		t:   t,
		ctx: t.Context(),
		clk: clk,
		s:   open(t, clk),
		ns:  fmt.Sprintf("T#%s#%016x#", t.Name(), rand.Uint64()),
	}
}

// pk returns a partition key unique to this test.
func (h *harness) pk(name string) string { return h.ns + name }

func (h *harness) put(items ...store.Item) {
	h.t.Helper()
	for _, it := range items {
		if err := h.s.Write(h.ctx, store.PutItem(it, store.Always)); err != nil {
			h.t.Fatalf("put %s / %s: %v", it.PK, it.SK, err)
		}
	}
}

func (h *harness) get(pk, sk string) store.Item {
	h.t.Helper()
	it, err := h.s.Get(h.ctx, pk, sk)
	if err != nil {
		h.t.Fatalf("get %s / %s: %v", pk, sk, err)
	}
	return it
}

func (h *harness) absent(pk, sk string) {
	h.t.Helper()
	it, err := h.s.Get(h.ctx, pk, sk)
	if err == nil {
		h.t.Fatalf("get %s / %s: found %s, want it absent", pk, sk, describe(it))
	}
	if !errors.Is(err, store.ErrNotFound) {
		h.t.Fatalf("get %s / %s: error %v does not match store.ErrNotFound", pk, sk, err)
	}
}

// queryAll pages through q and checks each page against the port's promises.
func (h *harness) queryAll(q store.Query) []store.Item {
	h.t.Helper()
	var out []store.Item
	for pages := 0; ; pages++ {
		if pages > 10000 {
			h.t.Fatalf("query %+v: still paging after 10000 pages", q)
		}
		p, err := h.s.Query(h.ctx, q)
		if err != nil {
			h.t.Fatalf("query %+v: %v", q, err)
		}
		if q.Limit > 0 && len(p.Items) > q.Limit {
			h.t.Fatalf("query %+v: page of %d items exceeds limit %d", q, len(p.Items), q.Limit)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		if p.Next == q.Cursor {
			h.t.Fatalf("query %+v: cursor did not advance", q)
		}
		q.Cursor = p.Next
	}
}

// sks lists the sort keys of items, the usual thing to compare.
func sks(items []store.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.SK
	}
	return out
}

func describe(it store.Item) string {
	return fmt.Sprintf("{%s / %s gsi1=%q/%q gsi2=%q/%q expires=%s v%d data=%dB counters=%v labels=%d}",
		it.PK, it.SK, it.GSI1PK, it.GSI1SK, it.GSI2PK, it.GSI2SK, it.ExpiresAt.Format(time.RFC3339Nano), it.Version, len(it.Data),
		it.Counters, len(it.Labels))
}

// sameItem compares items the way the port defines them: times by instant, and nil and empty
// data as the same.
func sameItem(a, b store.Item) bool {
	return a.PK == b.PK && a.SK == b.SK &&
		a.GSI1PK == b.GSI1PK && a.GSI1SK == b.GSI1SK &&
		a.GSI2PK == b.GSI2PK && a.GSI2SK == b.GSI2SK &&
		a.ExpiresAt.Equal(b.ExpiresAt) && a.Version == b.Version &&
		bytes.Equal(a.Data, b.Data) && maps.Equal(a.Counters, b.Counters) && maps.Equal(a.Labels, b.Labels)
}

func wantItem(t *testing.T, got, want store.Item) {
	t.Helper()
	if !sameItem(got, want) {
		t.Fatalf("got item %s\nwant      %s", describe(got), describe(want))
	}
}

func wantSKs(t *testing.T, what string, got []store.Item, want []string) {
	t.Helper()
	g := sks(got)
	if len(want) == 0 && len(g) == 0 {
		return
	}
	if !slices.Equal(g, want) {
		t.Fatalf("%s: got sort keys\n  %s\nwant\n  %s", what, strings.Join(g, " "), strings.Join(want, " "))
	}
}

// wantCondErr checks that err is a *store.ConditionError naming key, cond and expect.
func wantCondErr(t *testing.T, err error, key store.Key, cond store.Cond, expect int64) {
	t.Helper()
	if err == nil {
		t.Fatalf("write on %s under %s succeeded, want a failed condition", key, cond)
	}
	var ce *store.ConditionError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *store.ConditionError", err, err)
	}
	if !errors.Is(err, store.ErrConditionFailed) {
		t.Fatalf("error %v does not match store.ErrConditionFailed", err)
	}
	if ce.Key != key || ce.Cond != cond || (cond == store.VersionEquals && ce.Expect != expect) {
		t.Fatalf("condition error names %s %s %d, want %s %s %d", ce.Key, ce.Cond, ce.Expect, key, cond, expect)
	}
	if !strings.Contains(err.Error(), key.String()) {
		t.Fatalf("error %q does not name the key %s", err, key)
	}
}

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("%s: got error %v, want one matching store.ErrInvalid", what, err)
	}
}

// payload returns n bytes covering every byte value, so a store that treats data as text
// (dropping NULs, re-encoding) fails.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}
