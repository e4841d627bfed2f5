package thrivecart

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/ledger"
	"github.com/cartrelay/cartrelay/shared/phone"
)

func txFixtures(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "transactions", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transaction fixtures: %v", err)
	}
	return files
}

func readTx(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "transactions", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func normalizeTx(t testing.TB, name string) []domain.Event {
	t.Helper()
	evs, err := NormalizeTransaction(readTx(t, name), receivedAt, Options{Phone: phone.E164})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return evs
}

func TestTransactionGolden(t *testing.T) {
	for _, path := range txFixtures(t) {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				Events    []domain.Event `json:"events,omitempty"`
				Error     string         `json:"error,omitempty"`
				ErrorKind string         `json:"error_kind,omitempty"`
			}
			r.Events, err = NormalizeTransaction(body, receivedAt, Options{Phone: phone.E164})
			if err != nil {
				r.Error, r.ErrorKind = err.Error(), errorKind(err)
			}
			got, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			gpath := filepath.Join("testdata", "transactions", "golden", name+".golden.json")
			if *update {
				if err := os.WriteFile(gpath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(gpath)
			if err != nil {
				t.Fatalf("%v (run go test -run TestTransactionGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update to accept):\n%s", gpath, firstDiff(string(want), string(got)))
			}
		})
	}
}

func TestTransactionErrors(t *testing.T) {
	for name, kind := range map[string]error{
		"unknown_type.json": ErrUnknownEvent, "invalid_missing_email.json": ErrInvalidEvent, "invalid_amount.json": ErrInvalidEvent,
	} {
		_, err := NormalizeTransaction(readTx(t, name), receivedAt, Options{})
		var ee *EventError
		if !errors.As(err, &ee) || !errors.Is(err, kind) || ee.Event != EventTransaction {
			t.Errorf("%s: %v, want %v", name, err, kind)
		}
	}
	if _, err := NormalizeTransaction([]byte(`[1]`), receivedAt, Options{}); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("not an object: %v", err)
	}
}

// TestTransactionIdentities checks that a polled record lands on the key its webhook uses.
func TestTransactionIdentities(t *testing.T) {
	webhookKey := func(fixture string) string {
		for _, e := range normalizeWebhook(t, fixture) {
			if e.Kind == domain.KindOrder {
				return e.Order.Key
			}
		}
		t.Fatalf("%s has no order", fixture)
		return ""
	}
	for tx, hook := range map[string]string{
		"charge_base.json": "order_success.json", "charge_bump.json": "order_success.json",
		"rebill.json": "order_subscription_payment.json", "rebill_first.json": "order_success.json",
		"refund_partial.json": "order_refund_partial.json", "refund_rebill.json": "order_refund_rebill.json",
	} {
		evs := normalizeTx(t, tx)
		if len(evs) != 1 || evs[0].Order == nil {
			t.Fatalf("%s: %+v", tx, evs)
		}
		if got, want := evs[0].Order.Key, webhookKey(hook); got != want {
			t.Errorf("%s keys %s, %s keys %s", tx, got, hook, want)
		}
	}
	cancel := normalizeTx(t, "cancel.json")
	hook := normalizeWebhook(t, "order_subscription_cancelled.json")
	if len(cancel) != 1 || cancel[0].Sub == nil || cancel[0].Sub.Key != hook[0].Sub.Key || cancel[0].Sub.Status != domain.SubCancelled {
		t.Errorf("cancel: %+v, webhook key %s", cancel, hook[0].Sub.Key)
	}
	if evs := normalizeTx(t, "cancel_unnamed.json"); len(evs) != 0 {
		t.Errorf("a cancel without a subscription id made events: %+v", evs)
	}
}

func normalizeWebhook(t testing.TB, name string) []domain.Event {
	t.Helper()
	evs, err := normalizeFull(loadNamed(t, name), receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// ledgerSim merges order events the way ingest does and collects the facts.
type ledgerSim struct {
	orders map[string]domain.Order
	facts  []domain.Fact
}

func (s *ledgerSim) apply(evs []domain.Event) {
	for _, e := range evs {
		if e.Kind != domain.KindOrder {
			continue
		}
		var stored *domain.Order
		if o, ok := s.orders[e.Order.Key]; ok {
			stored = &o
		}
		merged := ledger.MergeOrder(stored, *e.Order)
		s.facts = append(s.facts, ledger.OrderFacts("acct", stored, merged, ledger.Cutover{})...)
		s.orders[e.Order.Key] = merged
	}
}

func (s *ledgerSim) count(kind domain.FactKind) int {
	n := 0
	for _, f := range s.facts {
		if f.Kind == kind {
			n++
		}
	}
	return n
}

// permutations calls f with every order of the indexes 0..n-1.
func permutations(n int, f func([]int)) {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	var rec func(k int)
	rec = func(k int) {
		if k == n {
			f(append([]int(nil), idx...))
			return
		}
		for i := k; i < n; i++ {
			idx[k], idx[i] = idx[i], idx[k]
			rec(k + 1)
			idx[k], idx[i] = idx[i], idx[k]
		}
	}
	rec(0)
}

type source struct {
	name string
	evs  []domain.Event
}

// runAll applies the sources in every order and calls check with the result; it also checks
// that every order ends with the same stored orders (the merge converges) as webhooks alone
// when those are complete.
func runAll(t *testing.T, srcs []source, check func(t *testing.T, order string, s *ledgerSim)) map[string]domain.Order {
	t.Helper()
	var first map[string]domain.Order
	permutations(len(srcs), func(p []int) {
		s := &ledgerSim{orders: map[string]domain.Order{}}
		label := ""
		for _, i := range p {
			s.apply(srcs[i].evs)
			label += srcs[i].name + " "
		}
		check(t, label, s)
		if first == nil {
			first = s.orders
		} else {
			a, _ := json.Marshal(first)
			b, _ := json.Marshal(s.orders)
			if !bytes.Equal(a, b) {
				t.Fatalf("%s: stored orders depend on arrival order", label)
			}
		}
	})
	return first
}

func TestPollAndWebhookSaleWithBump(t *testing.T) {
	hook := normalizeWebhook(t, "order_success.json")
	srcs := []source{
		{"webhook", hook},
		{"poll-base", normalizeTx(t, "charge_base.json")},
		{"poll-bump", normalizeTx(t, "charge_bump.json")},
		{"poll-base-again", normalizeTx(t, "charge_base.json")},
	}
	key := hook[0].Order.Key
	got := runAll(t, srcs, func(t *testing.T, label string, s *ledgerSim) {
		placed := 0
		for _, f := range s.facts {
			if f.Kind != domain.FactOrderPlaced {
				t.Fatalf("%s: unexpected fact %s", label, f.Kind)
			}
			placed++
			if f.Order.Total != domain.MoneyFromMinor(7676, "GBP") || len(f.Order.Items) != 3 {
				t.Fatalf("%s: sale counted with total %v and %d items", label, f.Order.Total, len(f.Order.Items))
			}
		}
		if placed != 1 {
			t.Fatalf("%s: %d sales", label, placed)
		}
	})
	// The webhook's contents survive whatever the poll said.
	alone := &ledgerSim{orders: map[string]domain.Order{}}
	alone.apply(hook)
	a, _ := json.Marshal(alone.orders[key])
	b, _ := json.Marshal(got[key])
	if !bytes.Equal(a, b) {
		t.Errorf("polled charges changed the webhook's order:\n%s", firstDiff(string(a), string(b)))
	}

	// Polled charges alone count nothing: a sale cannot be told from one of its lines.
	s := &ledgerSim{orders: map[string]domain.Order{}}
	s.apply(srcs[1].evs)
	s.apply(srcs[2].evs)
	if len(s.facts) != 0 || !s.orders[key].Partial {
		t.Errorf("charges alone: %d facts, stored %+v", len(s.facts), s.orders[key])
	}
}

func TestPollAndWebhookRebill(t *testing.T) {
	hook := normalizeWebhook(t, "order_subscription_payment.json")
	poll := normalizeTx(t, "rebill.json")
	key := poll[0].Order.Key
	got := runAll(t, []source{{"webhook", hook}, {"poll", poll}, {"poll-again", poll}}, func(t *testing.T, label string, s *ledgerSim) {
		if s.count(domain.FactOrderPlaced) != 1 || len(s.facts) != 1 {
			t.Fatalf("%s: facts %+v", label, s.facts)
		}
		f := s.facts[0]
		if f.Order.Key != key || f.Order.Total != domain.MoneyFromMinor(5880, "GBP") || !f.Order.Rebill {
			t.Fatalf("%s: rebill counted as %+v", label, f.Order)
		}
	})
	alone := &ledgerSim{orders: map[string]domain.Order{}}
	alone.apply(hook)
	a, _ := json.Marshal(alone.orders[key])
	b, _ := json.Marshal(got[key])
	if !bytes.Equal(a, b) {
		t.Errorf("the polled rebill replaced the webhook's contents:\n%s", firstDiff(string(a), string(b)))
	}
	// Polled alone, the rebill still counts once: the poll is the backstop for a lost webhook.
	s := &ledgerSim{orders: map[string]domain.Order{}}
	s.apply(poll)
	s.apply(poll)
	if s.count(domain.FactOrderPlaced) != 1 {
		t.Errorf("poll alone: %+v", s.facts)
	}
}

func TestPollAndWebhookPartialRefund(t *testing.T) {
	sale := normalizeWebhook(t, "order_success.json")
	key := sale[0].Order.Key
	srcs := []source{
		{"sale", sale},
		{"webhook-refund", normalizeWebhook(t, "order_refund_partial.json")},
		{"poll-refund", normalizeTx(t, "refund_partial.json")},
		{"poll-charge", normalizeTx(t, "charge_bump.json")},
	}
	runAll(t, srcs, func(t *testing.T, label string, s *ledgerSim) {
		if s.count(domain.FactOrderPlaced) != 1 || s.count(domain.FactOrderRefunded) != 1 {
			t.Fatalf("%s: facts %+v", label, s.facts)
		}
		for _, f := range s.facts {
			if f.Kind == domain.FactOrderRefunded && (f.Refund.Delta != domain.MoneyFromMinor(1198, "GBP") ||
				f.Refund.Cumulative != domain.MoneyFromMinor(1198, "GBP") || f.Refund.Full) {
				t.Fatalf("%s: refund %+v", label, f.Refund)
			}
		}
		if o := s.orders[key]; o.Refunded != domain.MoneyFromMinor(1198, "GBP") || o.Partial {
			t.Fatalf("%s: stored refunded %v", label, o.Refunded)
		}
	})

	// Two refunds of one order, each seen by webhook and poll: the deltas add up to both,
	// never more.
	srcs = append(srcs[:3],
		source{"webhook-refund-2", normalizeWebhook(t, "order_refund_partial_second.json")},
		source{"poll-refund-2", pollRefund(t, "upsell", "7", 1798, 1715506200)})
	runAll(t, srcs, func(t *testing.T, label string, s *ledgerSim) {
		sum := int64(0)
		for _, f := range s.facts {
			if f.Kind == domain.FactOrderRefunded {
				sum += f.Refund.Delta.Minor
			}
		}
		if sum != 2996 || s.orders[key].Refunded.Minor != 2996 {
			t.Fatalf("%s: refunds sum to %d, stored %v", label, sum, s.orders[key].Refunded)
		}
	})
}

// TestPollRefundOfRebill refunds the rebill invoice, not the original order.
func TestPollRefundOfRebill(t *testing.T) {
	rebill := normalizeTx(t, "rebill.json")
	runAll(t, []source{
		{"webhook-rebill", normalizeWebhook(t, "order_subscription_payment.json")},
		{"poll-rebill", rebill},
		{"webhook-refund", normalizeWebhook(t, "order_refund_rebill.json")},
		{"poll-refund", normalizeTx(t, "refund_rebill.json")},
	}, func(t *testing.T, label string, s *ledgerSim) {
		if s.count(domain.FactOrderPlaced) != 1 || s.count(domain.FactOrderRefunded) != 1 {
			t.Fatalf("%s: facts %+v", label, s.facts)
		}
		for _, f := range s.facts {
			if f.Order.Key != rebill[0].Order.Key {
				t.Fatalf("%s: fact on %s", label, f.Order.Key)
			}
			if f.Kind == domain.FactOrderRefunded && (!f.Refund.Full || f.Refund.Delta.Minor != 5880) {
				t.Fatalf("%s: refund %+v", label, f.Refund)
			}
		}
	})
}

func pollRefund(t *testing.T, itemType, itemID string, amount, ts int64) []domain.Event {
	t.Helper()
	var rec map[string]any
	if err := json.Unmarshal(readTx(t, "refund_partial.json"), &rec); err != nil {
		t.Fatal(err)
	}
	rec["item_type"], rec["item_id"], rec["amount"], rec["timestamp"] = itemType, itemID, amount, ts
	b, _ := json.Marshal(rec)
	evs, err := NormalizeTransaction(b, receivedAt, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func FuzzNormalizeTransaction(f *testing.F) {
	for _, path := range txFixtures(f) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		evs, err := NormalizeTransaction(payload, receivedAt, Options{Phone: phone.E164})
		if err != nil {
			var ee *EventError
			if !errors.As(err, &ee) || (!errors.Is(err, ErrUnknownEvent) && !errors.Is(err, ErrInvalidEvent)) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		for _, e := range evs {
			if e.Source != domain.ThriveCart || e.Name != EventTransaction || e.OccurredAt.IsZero() {
				t.Fatalf("bad event header %+v", e)
			}
			switch e.Kind {
			case domain.KindOrder:
				o := e.Order
				if o == nil || o.Key == "" || o.Email == "" {
					t.Fatalf("incomplete order %+v", o)
				}
				// Only a rebill invoice may count as a sale; nothing polled carries refund
				// lines, which could add to the webhook's.
				if ledger.Placed(*o) && !o.Rebill || len(o.Refunds) > 0 || o.Refunded.Minor < 0 {
					t.Fatalf("polled order could double count: %+v", o)
				}
				if !o.SourceUpdatedAt.IsZero() {
					t.Fatalf("polled order would outrank a webhook: %v", o.SourceUpdatedAt)
				}
			case domain.KindSubscription:
				if e.Sub == nil || e.Sub.Key == "" || e.Sub.Email == "" || e.Sub.StatusAt.IsZero() {
					t.Fatalf("incomplete subscription %+v", e.Sub)
				}
			default:
				t.Fatalf("unexpected kind %q", e.Kind)
			}
			if _, err := json.Marshal(e); err != nil {
				t.Fatalf("event does not marshal: %v", err)
			}
		}
	})
}

// TestPollAndWebhookCancel: a polled cancellation that names its subscription changes the
// status once, whichever comes first.
func TestPollAndWebhookCancel(t *testing.T) {
	srcs := [][]domain.Event{
		normalizeWebhook(t, "order_success.json"),
		normalizeWebhook(t, "order_subscription_cancelled.json"),
		normalizeTx(t, "cancel.json"),
	}
	permutations(len(srcs), func(p []int) {
		subs := map[string]domain.Subscription{}
		cancelled := 0
		for _, i := range p {
			for _, e := range srcs[i] {
				if e.Kind != domain.KindSubscription {
					continue
				}
				var stored *domain.Subscription
				if s, ok := subs[e.Sub.Key]; ok {
					stored = &s
				}
				merged := ledger.MergeSubscription(stored, *e.Sub)
				for _, f := range ledger.SubscriptionFacts("acct", stored, merged, ledger.Cutover{}) {
					if f.Sub.Status == domain.SubCancelled {
						cancelled++
					}
				}
				subs[e.Sub.Key] = merged
			}
		}
		s := subs["thrivecart:3498801"]
		if cancelled != 1 || s.Status != domain.SubCancelled || len(subs) != 1 {
			t.Fatalf("order %v: %d cancellations, %d subscriptions, status %s", p, cancelled, len(subs), s.Status)
		}
		if s.Amount != domain.MoneyFromMinor(4900, "GBP") || s.Frequency != "month" {
			t.Fatalf("order %v: the polled cancellation replaced the webhook's terms: %+v", p, s)
		}
	})
}
