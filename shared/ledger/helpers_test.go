package ledger

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

const acct = "acct1"

// t0 is the start of every test timeline; mins(n) is n minutes later.
var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func mins(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

func usd(cents int64) domain.Money { return domain.Money{Minor: cents, Currency: "USD"} }

// kitchenSink is a large, fully populated order (testdata/kitchen_sink_order.json).
func kitchenSink(tb testing.TB) domain.Order {
	tb.Helper()
	b, err := os.ReadFile("testdata/kitchen_sink_order.json")
	if err != nil {
		tb.Fatal(err)
	}
	var o domain.Order
	if err := json.Unmarshal(b, &o); err != nil {
		tb.Fatal(err)
	}
	return o
}

// ver describes one version of the test order "ultracart:O1" compactly; at is its
// SourceUpdatedAt in minutes, and zero minutes mean unset times.
type ver struct {
	status     domain.OrderStatus
	at         int
	paid       int
	refunded   int64
	refundedAt int
	tracking   []string
	test       bool
	city       string // a descriptive field that differs between versions
}

func (v ver) order() domain.Order {
	o := domain.Order{
		Source: domain.UltraCart, OrderID: "O1", Key: "ultracart:O1", Email: "ann@example.com",
		Status: v.status, Test: v.test, Currency: "USD", Total: usd(10000), Subtotal: usd(10000),
		CreatedAt: mins(0), Billing: domain.Address{FirstName: "Ann", City: v.city},
	}
	if v.at != 0 {
		o.SourceUpdatedAt = mins(v.at)
	}
	if v.paid != 0 {
		o.PaidAt = mins(v.paid)
	}
	if v.refunded != 0 {
		o.Refunded = usd(v.refunded)
		o.RefundedAt = mins(v.refundedAt)
	}
	for _, n := range v.tracking {
		o.Tracking = append(o.Tracking, domain.Tracking{Number: n})
	}
	return o
}

// describe renders facts compactly for table expectations.
func describe(fs []domain.Fact) []string {
	var out []string
	for _, f := range fs {
		switch f.Kind {
		case domain.FactOrderPlaced:
			out = append(out, "placed")
		case domain.FactOrderRefunded:
			s := fmt.Sprintf("refunded +%s =%s", f.Refund.Delta.Decimal(), f.Refund.Cumulative.Decimal())
			if f.Refund.Full {
				s += " full"
			}
			out = append(out, s)
		case domain.FactOrderShipped:
			var ns []string
			for _, t := range f.Tracking {
				ns = append(ns, t.Number)
			}
			if len(ns) == 0 {
				out = append(out, "shipped untracked")
				break
			}
			out = append(out, "shipped "+strings.Join(ns, ","))
		case domain.FactOrderChargedBack:
			out = append(out, fmt.Sprintf("chargeback %+d =%s", f.Chargeback.Delta.Minor, f.Chargeback.Standing.Decimal()))
		case domain.FactOrderReversed:
			out = append(out, fmt.Sprintf("reversed %s net %s", f.Reversal.Why, f.Reversal.Net.Decimal()))
		case domain.FactSubscriptionChanged:
			out = append(out, fmt.Sprintf("sub %s→%s", f.FromStatus, f.Sub.Status))
		case domain.FactRebillScheduled:
			out = append(out, fmt.Sprintf("rebill %s→%s", clock(f.PreviousRebillAt), clock(f.Sub.NextAttempt)))
		default:
			out = append(out, string(f.Kind))
		}
	}
	return out
}

// clock names a time by its minutes after t0 ("-" for none), for describe.
func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return "m" + itoa(int64(t.Sub(t0)/time.Minute))
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func ptr[T any](v T) *T { return &v }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// orderStep is one version of an order and the facts its merge must produce (describe()).
type orderStep struct {
	in   domain.Order
	want []string
}

// play feeds steps through MergeOrder and OrderFacts as ingest does, checks each step's facts,
// hands them to each (when not nil) and returns the stored order.
func play(t *testing.T, steps []orderStep, each func(i int, merged domain.Order, fs []domain.Fact)) domain.Order {
	t.Helper()
	var stored *domain.Order
	for i, s := range steps {
		merged := MergeOrder(stored, s.in)
		fs := OrderFacts(acct, stored, merged, Cutover{})
		if got := describe(fs); !equalStrings(got, s.want) {
			t.Fatalf("step %d: facts %q, want %q", i, got, s.want)
		}
		if each != nil {
			each(i, merged, fs)
		}
		stored = &merged
	}
	return *stored
}
