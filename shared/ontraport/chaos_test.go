package ontraport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
)

// TestChaos delivers orders and refunds through a fake ONTRAPORT that fails 30% of requests
// with 500 (half of them after doing the work), throws 429 storms and lets some creations
// hang after they happened, while the "forwarder" below crashes between a successful call and
// the fact-done marker 30% of the time. Two destination instances (two processes) share the
// table. Each order must end with exactly one transaction, each refund with exactly one refund
// or negative transaction, and the fake must never see more requests in a rolling minute than
// the account's budget (scaled down to 30 so the simulated minutes pass quickly).
func TestChaos(t *testing.T) {
	for _, seed := range []uint64{7, 8, 9, 10} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { chaos(t, seed) })
	}
}

func chaos(t *testing.T, seed uint64) {
	const budget = 30
	// The fake decides faults on its own goroutines, under its lock; the harness has its own
	// source so the two never share one.
	rnd := rand.New(rand.NewPCG(seed, 11))
	faultRnd := rand.New(rand.NewPCG(seed, 13))
	storm, creations := 0, 0
	var faults = map[ontraportfake.Fault]int{}
	e := newEnv(t,
		withFake(func(o *ontraportfake.Options) {
			o.Limit = budget
			o.StormReset = 5 * time.Second
			o.Fault = func(r ontraportfake.Request) ontraportfake.Fault {
				f := ontraportfake.None
				x := faultRnd.Float64()
				creation := r.Path == pathProcessManual || r.Path == pathRefund
				if creation {
					creations++
				}
				switch {
				case storm > 0:
					storm--
					f = ontraportfake.TooMany
				case creation && creations == 3:
					f = ontraportfake.HangAfter
				case x < 0.02 || r.N%60 == 30:
					storm = 5
					f = ontraportfake.TooMany
				case x < 0.17:
					f = ontraportfake.ServerError
				case x < 0.32:
					f = ontraportfake.ServerErrorAfter
				case creation && x < 0.37:
					f = ontraportfake.HangAfter
				}
				faults[f]++
				return f
			}
		}),
		withAccount(func(a *accounts.Account) { set(a, keyRate, fmt.Sprint(budget)) }),
		withOptions(func(o *Options) { o.HTTPClient = &http.Client{Timeout: 150 * time.Millisecond} }),
	)
	other := New(e.dest.o) // a second process on the same table
	dests := []*Destination{e.dest, other}

	var facts []domain.Fact
	type refundCase struct {
		f     domain.Fact
		ext   string
		delta string
	}
	var orders []domain.Fact
	var fulls, partials []refundCase
	for i := range 14 {
		email := fmt.Sprintf("buyer%d@example.com", i%5)
		items := []domain.LineItem{lineItem(fmt.Sprintf("SKU-%d", i%4), int64(1+i%3), "19.99")}
		if i%2 == 0 {
			items = append(items, lineItem("SKU-X", 1, "5.05"))
		}
		o := orderFact(fmt.Sprintf("K-%d", i), email, items, "4.00", "1.23", "2.00", "0")
		var parts int64
		for _, it := range items {
			parts += it.UnitPrice.Minor * it.Quantity
		}
		o.Order.Total = domain.Money{Minor: parts + 400 + 123 - 200, Currency: "USD"}
		orders = append(orders, o)
		facts = append(facts, o)
	}
	for i, o := range orders {
		total := o.Order.Total
		switch {
		case i < 4:
			r := refundFact(o, total.Decimal(), total.Decimal())
			fulls = append(fulls, refundCase{f: r})
			facts = append(facts, r)
		case i < 8:
			half, _ := total.Div(2)
			rest, _ := total.Sub(half)
			r1 := refundFact(o, half.Decimal(), half.Decimal())
			r2 := refundFact(o, rest.Decimal(), total.Decimal())
			partials = append(partials, refundCase{f: r1, ext: refundExternalID(o.Order.Key, half), delta: half.Decimal()},
				refundCase{f: r2, ext: refundExternalID(o.Order.Key, total), delta: rest.Decimal()})
			facts = append(facts, r1, r2)
		case i < 10:
			r := refundFact(o, "3.00", "3.00")
			partials = append(partials, refundCase{f: r, ext: refundExternalID(o.Order.Key, usd("3.00")), delta: "3.00"})
			facts = append(facts, r)
		}
	}

	ctx := context.Background()
	repo := history.New(e.st)
	crashes, attempts, retryHints := 0, 0, 0
	for _, f := range facts {
		for try := 0; ; try++ {
			if try > 300 {
				t.Fatalf("%s never got through", f.ID)
			}
			attempts++
			d := dests[rnd.IntN(2)]
			out, err := d.Deliver(ctx, e.acct, f)
			if err != nil {
				if deliver.IsPermanent(err) {
					t.Fatalf("%s parked: %v\n%s", f.ID, err, out.Note)
				}
				var ra *deliver.RetryAfterError
				if errors.As(err, &ra) {
					retryHints++
					e.clk.Advance(ra.After)
				} else {
					e.clk.Advance(2 * time.Second)
				}
				continue
			}
			if rnd.Float64() < 0.3 {
				// The process died after ONTRAPORT answered and before the marker was written.
				crashes++
				continue
			}
			if err := repo.MarkFactDone(ctx, f.Account, Name, f.ID,
				map[string]any{"at": e.clk.Now(), "status": out.Status, "result": out.Done}); err != nil {
				t.Fatal(err)
			}
			break
		}
	}

	for _, o := range orders {
		txs := e.fake.TransactionsFor(o.Order.Key)
		if len(txs) != 1 {
			t.Errorf("order %s has %d transactions", o.Order.Key, len(txs))
			continue
		}
		if want := ontraportfake.MustAmount(o.Order.Total.Decimal()); txs[0].Total != want {
			t.Errorf("order %s logged %s, total %s", o.Order.Key, txs[0].Total, want)
		}
	}
	refunded := map[int64]int{}
	for _, r := range e.fake.Refunds() {
		if r.All {
			t.Fatal("a refund selected every transaction")
		}
		refunded[r.TransactionID]++
	}
	for _, r := range fulls {
		inv := e.fake.TransactionsFor(r.f.Order.Key)[0].ID
		if refunded[inv] != 1 {
			t.Errorf("order %s refunded %d times", r.f.Order.Key, refunded[inv])
		}
	}
	if len(refunded) != len(fulls) {
		t.Errorf("%d transactions refunded, want %d", len(refunded), len(fulls))
	}
	for _, r := range partials {
		txs := e.fake.TransactionsFor(r.ext)
		if len(txs) != 1 || txs[0].Total != -ontraportfake.MustAmount(r.delta) {
			t.Errorf("partial refund %s: %+v", r.ext, txs)
		}
	}
	var stray int
	for _, tx := range e.fake.Transactions() {
		if !strings.HasPrefix(tx.ExternalOrderID, "ultracart:K-") {
			stray++
		}
	}
	if stray != 0 {
		t.Errorf("%d transactions without a known external_order_id", stray)
	}
	if m := e.fake.MaxInWindow(); m > budget {
		t.Errorf("the fake saw %d requests in one rolling minute; the budget is %d", m, budget)
	}
	all := e.fake.Calls()
	minutes := all[len(all)-1].At.Sub(all[0].At).Minutes()
	t.Logf("%d facts, %d deliveries (%d crashes before the marker, %d rate hints); %d requests over %.1f simulated minutes, at most %d in a rolling minute; faults: 500 %d, 500-after-work %d, 429 %d, hang-after-work %d",
		len(facts), attempts, crashes, retryHints, len(all), minutes, e.fake.MaxInWindow(),
		faults[ontraportfake.ServerError], faults[ontraportfake.ServerErrorAfter], faults[ontraportfake.TooMany], faults[ontraportfake.HangAfter])
	if faults[ontraportfake.ServerErrorAfter] == 0 || faults[ontraportfake.TooMany] == 0 || faults[ontraportfake.HangAfter] == 0 || crashes == 0 {
		t.Error("the run did not exercise every fault; change the seed")
	}
}

// TestBudgetAt180 sends more than a minute's worth of requests at ONTRAPORT's real budget with
// three processes: the fake, which enforces 180 per rolling minute, never has to refuse one.
func TestBudgetAt180(t *testing.T) {
	e := newEnv(t)
	dests := []*Destination{e.dest, New(e.dest.o), New(e.dest.o)}
	for i := range 80 {
		f := orderFact(fmt.Sprintf("V-%d", i), fmt.Sprintf("v%d@example.com", i), []domain.LineItem{lineItem("SKU-1", 1, "1.00")}, "0", "0", "0", "1.00")
		for {
			_, err := dests[i%3].Deliver(context.Background(), e.acct, f)
			var ra *deliver.RetryAfterError
			if errors.As(err, &ra) {
				e.clk.Advance(ra.After)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	refused := 0
	for _, c := range e.fake.Calls() {
		if c.Status == http.StatusTooManyRequests {
			refused++
		}
	}
	all := e.fake.Calls()
	t.Logf("%d requests over %s, at most %d in a rolling minute", len(all), all[len(all)-1].At.Sub(all[0].At), e.fake.MaxInWindow())
	if m := e.fake.MaxInWindow(); m > DefaultRequestsPerMinute || m < DefaultRequestsPerMinute-30 || refused > 0 {
		t.Fatalf("at most %d requests in a minute, %d refused; want close to %d and none refused", m, refused, DefaultRequestsPerMinute)
	}
}
