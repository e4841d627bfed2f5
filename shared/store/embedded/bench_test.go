package embedded_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/store/embedded"
)

// doc is about the size of a normalized order document.
var doc = make([]byte, 2048)

func benchStore(b *testing.B) *embedded.Store {
	b.Helper()
	return newStore(b, openDB(b, filepath.Join(b.TempDir(), sqlitedb.FileName)), clock.System{})
}

func orderItem(i int) store.Item {
	return store.Item{
		PK: fmt.Sprintf("A#1#E#c%d@example.com", i%100), SK: fmt.Sprintf("O#ultracart#%08d", i),
		GSI1PK: fmt.Sprintf("O#1#ultracart#%08d", i), GSI1SK: "-",
		GSI2PK: "A#1#M#2040-01", GSI2SK: fmt.Sprintf("2040-01-02T03:04:05Z#%08d", i),
		Version: 1, Data: doc,
	}
}

// BenchmarkPut measures one durable conditional write (synchronous=FULL: one fsync each).
func BenchmarkPut(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		if err := s.Write(ctx, store.PutItem(orderItem(i), store.NotExists)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkPutParallel(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	var next atomicCounter
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Write(ctx, store.PutItem(orderItem(next.add()), store.NotExists)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkTransact100 measures the largest transaction.
func BenchmarkTransact100(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		ws := make([]store.Write, store.MaxTransactWrites)
		for j := range ws {
			ws[j] = store.PutItem(orderItem(i), store.NotExists)
			i++
		}
		if err := s.Transact(ctx, ws); err != nil {
			b.Fatal(err)
		}
	}
}

func seeded(b *testing.B, n int) *embedded.Store {
	b.Helper()
	s := benchStore(b)
	ctx := b.Context()
	for i := 0; i < n; i += store.MaxTransactWrites {
		ws := make([]store.Write, 0, store.MaxTransactWrites)
		for j := i; j < i+store.MaxTransactWrites && j < n; j++ {
			ws = append(ws, store.PutItem(orderItem(j), store.Always))
		}
		if err := s.Transact(ctx, ws); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkGet(b *testing.B) {
	const n = 10000
	s := seeded(b, n)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		it := orderItem(i % n)
		if _, err := s.Get(ctx, it.PK, it.SK); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

// BenchmarkQuery reads one contact's 100 orders in pages of 25, as a repository would.
func BenchmarkQuery(b *testing.B) {
	const n = 10000
	s := seeded(b, n)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		items, err := store.QueryAll(ctx, s, store.Query{PK: orderItem(i % 100).PK, Limit: 25})
		if err != nil || len(items) != n/100 {
			b.Fatalf("%d items, error %v", len(items), err)
		}
		i++
	}
}

// BenchmarkQueryGSI2 reads a month of orders from the report index in pages of 100.
func BenchmarkQueryGSI2(b *testing.B) {
	const n = 10000
	s := seeded(b, n)
	ctx := b.Context()
	for b.Loop() {
		items, err := store.QueryAll(ctx, s, store.Query{Index: store.GSI2, PK: "A#1#M#2040-01", Limit: 100})
		if err != nil || len(items) != n {
			b.Fatalf("%d items, error %v", len(items), err)
		}
	}
}

type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) add() int { return int(c.n.Add(1)) }

// BenchmarkReadContacts reads contacts' partitions one after the other, as a rebuild of the
// reports does: 20,000 contacts, each a profile and one to six orders of 0.6 to 2.3 KB.
func BenchmarkReadContacts(b *testing.B) {
	const contacts = 20000
	s := contactsStore(b, contacts)
	ctx := b.Context()
	b.ResetTimer()
	cpu0 := cpuTime()
	read := 0
	for i := 0; b.Loop(); i++ {
		pk := fmt.Sprintf("A#1#E#shopper%d@example.com", i%contacts)
		got, err := store.QueryAll(ctx, s, store.Query{PK: pk, SKFrom: "M", SKTo: "S#~"})
		if err != nil || len(got) != 2+(i%contacts)%6 {
			b.Fatalf("%s: %d items, %v", pk, len(got), err)
		}
		read += len(got)
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "items/s")
	// On a machine others share, the CPU time the process used says more than the clock.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/contact")
}

// BenchmarkReadContactsTogether reads the same contacts as BenchmarkReadContacts, a hundred
// partitions to a QueryPartitions, as a rebuild of the reports now does. An op is one contact.
func BenchmarkReadContactsTogether(b *testing.B) {
	const contacts = 20000
	s := contactsStore(b, contacts)
	ctx := b.Context()
	b.ResetTimer()
	cpu0 := cpuTime()
	read, i := 0, 0
	pks := make([]string, 0, store.MaxQueryPartitions)
	for b.Loop() {
		pks = append(pks, fmt.Sprintf("A#1#E#shopper%d@example.com", i%contacts))
		i++
		if len(pks) < store.MaxQueryPartitions {
			continue
		}
		got, err := s.QueryPartitions(ctx, store.Query{SKFrom: "M", SKTo: "S#~"}, pks)
		if err != nil {
			b.Fatal(err)
		}
		for j, items := range got {
			c := (i - len(pks) + j) % contacts
			if len(items) != 2+c%6 {
				b.Fatalf("%s: %d items", pks[j], len(items))
			}
			read += len(items)
		}
		pks = pks[:0]
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "items/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/contact")
}

// contactsStore writes n contacts, each a profile and one to six orders of 0.6 to 2.3 KB.
func contactsStore(b *testing.B, contacts int) *embedded.Store {
	order := make([]byte, 2400)
	s := benchStore(b)
	ctx := b.Context()
	var ws []store.Write
	items := 0
	for c := range contacts {
		pk := fmt.Sprintf("A#1#E#shopper%d@example.com", c)
		ws = append(ws, store.PutItem(store.Item{PK: pk, SK: "PROFILE", GSI2PK: fmt.Sprintf("A#1#CI#%02d", c%16),
			GSI2SK: pk, Version: 1, Data: doc[:530]}, store.Always))
		for o := range 1 + c%6 {
			ws = append(ws, store.PutItem(store.Item{PK: pk, SK: fmt.Sprintf("O#ultracart:%08d", c*10+o),
				GSI1PK: fmt.Sprintf("O#1#ultracart:%08d", c*10+o), GSI1SK: "-",
				GSI2PK: "A#1#M#2040-01", GSI2SK: fmt.Sprintf("2040-01-02T03:04:05Z#%08d", c*10+o),
				Version: 1, Data: order[:600+(c*7+o*300)%1700]}, store.Always))
		}
		if len(ws) >= store.MaxTransactWrites-10 || c == contacts-1 {
			items += len(ws)
			if err := s.Transact(ctx, ws); err != nil {
				b.Fatal(err)
			}
			ws = ws[:0]
		}
	}
	return s
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
