package ontraport

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
	"github.com/cartrelay/cartrelay/shared/store"
)

func calls(e *env, method, path string) int { return len(e.fake.CallsTo(method, path)) }

// TestOrderPlaced logs one transaction whose total is the order's to the cent, with products
// matched by SKU (created when missing), the buyer merged by email, and the ids remembered.
func TestOrderPlaced(t *testing.T) {
	e := newEnv(t)
	existing := e.fake.AddContact(map[string]string{"email": "ann@example.com", "firstname": "Annie"})
	f := orderFact("A-1", "ann@example.com",
		[]domain.LineItem{lineItem("SKU-1", 3, "9.99"), lineItem("SKU-2", 1, "20.00")}, "4.95", "2.16", "5.00", "52.08")
	f.Order.Handling = usd("0")
	out := e.mustDeliver(f)
	if out.Status != history.DeliverySent {
		t.Fatalf("status %s, note %s", out.Status, out.Note)
	}
	txs := e.fake.TransactionsFor("ultracart:A-1")
	if len(txs) != 1 || txs[0].Total != ontraportfake.MustAmount("52.08") || txs[0].ContactID != existing {
		t.Fatalf("transactions %+v", txs)
	}
	if txs[0].TransDate != t0.UnixMilli() || txs[0].InvoiceTemplate != invoiceSuppressed {
		t.Errorf("trans_date %d, invoice_template %d", txs[0].TransDate, txs[0].InvoiceTemplate)
	}
	done := out.Done.(orderDone)
	if done.InvoiceID != txs[0].ID || done.TransactionID != txs[0].TransactionID || done.ContactID != existing || done.Adopted {
		t.Errorf("done %+v, transaction %+v", done, txs[0])
	}
	skus := map[string]bool{}
	for _, p := range e.fake.Products() {
		skus[p.SKU] = true
	}
	for _, s := range []string{"SKU-1", "SKU-2", skuShipping, skuTax} {
		if !skus[s] {
			t.Errorf("product %s not created: %v", s, skus)
		}
	}
	c, _ := e.fake.ContactByEmail("ann@example.com")
	if c.ID != existing || c.Fields["firstname"] != "Ann" || c.Fields["city"] != "Springfield" || c.Fields["office_phone"] != "+12175550100" {
		t.Errorf("contact %+v", c)
	}
	if id, _ := (cache{st: e.st, acct: testAcct}).contact(context.Background(), "ann@example.com"); id != existing {
		t.Errorf("remembered contact id %d, want %d", id, existing)
	}

	// A second order reuses the products: no lookup, no creation.
	before := calls(e, http.MethodGet, "/Products") + calls(e, http.MethodPost, "/Products")
	e.mustDeliver(orderFact("A-2", "ann@example.com", []domain.LineItem{lineItem("SKU-1", 1, "9.99")}, "0", "0", "0", "9.99"))
	if after := calls(e, http.MethodGet, "/Products") + calls(e, http.MethodPost, "/Products"); after != before {
		t.Errorf("product requests grew from %d to %d for known SKUs", before, after)
	}
}

// TestOrderPlacedNeverTwice: a redelivery without the fact-done marker adopts the transaction
// from the table, without asking ONTRAPORT; after an attempt whose outcome is unknown (a crash
// after the call, before the record), it asks ONTRAPORT by external_order_id and adopts.
func TestOrderPlacedNeverTwice(t *testing.T) {
	e := newEnv(t)
	f := orderFact("B-1", "bo@example.com", []domain.LineItem{lineItem("SKU-1", 1, "10.00")}, "0", "0", "0", "10.00")
	first, err := e.deliver(f)
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.deliver(f)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Done.(orderDone).Adopted || second.Done.(orderDone).InvoiceID != first.Done.(orderDone).InvoiceID {
		t.Fatalf("redelivery: %+v", second.Done)
	}
	if n := calls(e, http.MethodGet, "/Transactions"); n != 0 {
		t.Errorf("%d lookups by external_order_id; a known transaction needs none", n)
	}
	// A crash after ONTRAPORT logged it and before the record: the claim is left behind, and
	// runs out.
	pk := txPK(testAcct, "ultracart:B-1")
	it, err := e.st.Get(context.Background(), pk, skDash)
	if err != nil {
		t.Fatal(err)
	}
	it.Data = mustJSON(txDoc{ClaimedUntil: e.clk.Now().Add(claimTTL)})
	if err := e.st.Write(context.Background(), store.PutItem(it, store.Always)); err != nil {
		t.Fatal(err)
	}
	var ra *deliver.RetryAfterError
	if _, err := e.deliver(f); !errors.As(err, &ra) || !errors.Is(err, ErrInProgress) {
		t.Fatalf("while the crashed delivery's claim runs: %v", err)
	}
	e.clk.Advance(claimTTL + time.Second)
	third, err := e.deliver(f)
	if err != nil {
		t.Fatal(err)
	}
	if !third.Done.(orderDone).Adopted || third.Done.(orderDone).InvoiceID != first.Done.(orderDone).InvoiceID {
		t.Fatalf("after the crash: %+v", third.Done)
	}
	if n := len(e.fake.TransactionsFor("ultracart:B-1")); n != 1 || calls(e, http.MethodPost, pathProcessManual) != 1 ||
		calls(e, http.MethodGet, "/Transactions") != 1 {
		t.Fatalf("%d transactions, %d processManual calls, %d lookups", n, calls(e, http.MethodPost, pathProcessManual),
			calls(e, http.MethodGet, "/Transactions"))
	}
	if !strings.Contains(third.Note, "adopted") {
		t.Errorf("note %q", third.Note)
	}
	// Once adopted it is recorded: the next redelivery asks nobody.
	if _, err := e.deliver(f); err != nil || calls(e, http.MethodGet, "/Transactions") != 1 {
		t.Fatalf("redelivery after adopting: %v, %d lookups", err, calls(e, http.MethodGet, "/Transactions"))
	}
	// An attempt that failed leaves the same doubt: ONTRAPORT logged B-2 (by an earlier process
	// that then died), and the next delivery adopts it.
	pre := e.fake.AddTransaction(ontraportfake.Transaction{ExternalOrderID: "ultracart:B-2", ContactID: 1})
	if err := e.st.Write(context.Background(), store.PutItem(store.Item{PK: txPK(testAcct, "ultracart:B-2"), SK: skDash,
		Version: 1, Data: mustJSON(txDoc{})}, store.Always)); err != nil {
		t.Fatal(err)
	}
	out := e.mustDeliver(orderFact("B-2", "bo@example.com", []domain.LineItem{lineItem("SKU-1", 1, "10.00")}, "0", "0", "0", "10.00"))
	if d := out.Done.(orderDone); !d.Adopted || d.InvoiceID != pre {
		t.Fatalf("transaction of an attempt of unknown outcome: %+v", d)
	}
}

// TestOrderPlacedAfterTimeout: the call timed out after ONTRAPORT created the transaction; the
// retry adopts it.
func TestOrderPlacedAfterTimeout(t *testing.T) {
	e := newEnv(t, withOptions(func(o *Options) { o.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond} }))
	e.fake.SetFault(func(r ontraportfake.Request) ontraportfake.Fault {
		if r.Path == pathProcessManual {
			return ontraportfake.HangAfter
		}
		return ontraportfake.None
	})
	f := orderFact("C-1", "cy@example.com", []domain.LineItem{lineItem("SKU-1", 2, "5.00")}, "0", "0", "0", "10.00")
	out, err := e.deliver(f)
	if err == nil || deliver.IsPermanent(err) {
		t.Fatalf("timeout: %v, want a retryable error", err)
	}
	if len(out.Exchanges) == 0 || out.Exchanges[len(out.Exchanges)-1].URL != e.fake.URL+pathProcessManual {
		t.Fatalf("the failed attempt's exchanges are returned: %+v", out.Exchanges)
	}
	e.fake.SetFault(nil)
	out = e.mustDeliver(f)
	if !out.Done.(orderDone).Adopted || len(e.fake.TransactionsFor("ultracart:C-1")) != 1 {
		t.Fatalf("retry: %+v; transactions %+v", out.Done, e.fake.TransactionsFor("ultracart:C-1"))
	}
}

// TestRefunds covers a full refund in one step, its redelivery, and partial refunds that
// complete an order.
func TestRefunds(t *testing.T) {
	e := newEnv(t)
	full := orderFact("R-1", "rae@example.com", []domain.LineItem{lineItem("SKU-1", 1, "30.00")}, "0", "0", "0", "30.00")
	e.mustDeliver(full)
	inv := e.fake.TransactionsFor("ultracart:R-1")[0].ID
	rf := refundFact(full, "30.00", "30.00")
	out, err := e.deliver(rf)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		ObjectID int     `json:"objectID"`
		IDs      []int64 `json:"ids"`
	}
	refunds := e.fake.CallsTo(http.MethodPut, pathRefund)
	if len(refunds) != 1 || json.Unmarshal([]byte(refunds[0].Body), &body) != nil || len(body.IDs) != 1 || body.IDs[0] != inv || body.ObjectID != 46 {
		t.Fatalf("refund requests %+v", refunds)
	}
	if d := out.Done.(refundDone); d.Kind != "full" || d.InvoiceID != inv {
		t.Fatalf("done %+v", d)
	}
	// Redelivered without the marker: ONTRAPORT shows it refunded; no second refund.
	out, err = e.deliver(rf)
	if err != nil || !out.Done.(refundDone).Adopted || len(e.fake.Refunds()) != 1 {
		t.Fatalf("redelivery: %v %+v refunds %+v", err, out.Done, e.fake.Refunds())
	}

	part := orderFact("R-2", "rae@example.com", []domain.LineItem{lineItem("SKU-1", 2, "25.00")}, "0", "0", "0", "50.00")
	e.mustDeliver(part)
	p1 := refundFact(part, "12.34", "12.34")
	out1 := e.mustDeliver(p1)
	p2 := refundFact(part, "37.66", "50.00") // completes the order
	out2 := e.mustDeliver(p2)
	if _, err := e.deliver(p2); err != nil { // and a redelivery
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ext    string
		amount string
		done   any
	}{{"ultracart:R-2:refund:1234USD", "-12.34", out1.Done}, {"ultracart:R-2:refund:5000USD", "-37.66", out2.Done}} {
		txs := e.fake.TransactionsFor(tc.ext)
		if len(txs) != 1 || txs[0].Total != ontraportfake.MustAmount(tc.amount) {
			t.Fatalf("%s: %+v", tc.ext, txs)
		}
		if d := tc.done.(refundDone); d.Kind != "partial" || d.InvoiceID != txs[0].ID || d.Amount != tc.amount {
			t.Errorf("%s done %+v", tc.ext, d)
		}
	}
	var net ontraportfake.Amount
	for _, tx := range e.fake.Transactions() {
		if strings.HasPrefix(tx.ExternalOrderID, "ultracart:R-2") {
			net += tx.Total
		}
	}
	if net != 0 || len(e.fake.Refunds()) != 1 {
		t.Fatalf("order R-2 nets %s in ONTRAPORT with %d refund calls; want 0 and only R-1's", net, len(e.fake.Refunds()))
	}
}

// TestRefundWithoutTransaction parks a refund whose purchase never reached ONTRAPORT, and skips
// one of an order from before the history cutover.
func TestRefundWithoutTransaction(t *testing.T) {
	e := newEnv(t)
	f := orderFact("N-1", "ned@example.com", []domain.LineItem{lineItem("SKU-1", 1, "10.00")}, "0", "0", "0", "10.00")
	_, err := e.deliver(refundFact(f, "10.00", "10.00"))
	if !errors.Is(err, ErrNoTransaction) || !deliver.IsPermanent(err) {
		t.Fatalf("err %v, want a permanent ErrNoTransaction", err)
	}
	old := orderFact("N-2", "ned@example.com", []domain.LineItem{lineItem("SKU-1", 1, "10.00")}, "0", "0", "0", "10.00")
	old.Order.PaidAt = t0.Add(-30 * 24 * time.Hour)
	out, err := e.deliver(refundFact(old, "4.00", "4.00"))
	if err != nil || out.Status != history.DeliverySkipped {
		t.Fatalf("historical order: %v %s", err, out.Status)
	}
	if calls(e, http.MethodPost, pathProcessManual)+calls(e, http.MethodPut, pathRefund) != 0 {
		t.Fatal("nothing may be logged for a refund without its purchase")
	}
}

// TestSubscriptionChanged writes the leading status word of all the contact's subscriptions
// and each subscription's own word, applies the new status's tag and removes the previous
// status's tag unless another subscription of the contact still holds it. The history is kept
// as ingest keeps it: each subscription is stored before its fact is delivered.
func TestSubscriptionChanged(t *testing.T) {
	e := newEnv(t)
	key := e.fake.AddField("Subscription Status")
	list := e.fake.AddField("Subscriptions")
	sub := func(id string, st, from domain.SubscriptionStatus, at time.Time) domain.Fact {
		s := domain.Subscription{Key: domain.SubscriptionKey(domain.UltraCart, id), Source: domain.UltraCart, ID: id,
			Email: "sue@example.com", Status: st, StatusAt: at, Products: []string{"PLAN-" + id}}
		return domain.Fact{ID: domain.SubscriptionChangedID(testAcct, s.Key, st, at), Account: testAcct,
			Kind: domain.FactSubscriptionChanged, Email: "sue@example.com", OccurredAt: at, Sub: &s, FromStatus: from}
	}
	for _, tc := range []struct {
		f        domain.Fact
		word     string // the changed subscription's word
		field    string // the word for all of them
		list     string
		tags     []string
		notTags  []string
		otherSub *domain.Subscription
	}{
		{f: sub("AO-1", domain.SubActive, "", t0), word: "active", field: "active", list: "AO-1 [PLAN-AO-1]: active",
			tags: []string{"Subscription: active"}},
		{f: sub("AO-1", domain.SubPaymentFailed, domain.SubActive, t0.Add(time.Hour)), word: "card declined", field: "card declined",
			list: "AO-1 [PLAN-AO-1]: card declined", tags: []string{"Subscription: card declined"}, notTags: []string{"Subscription: active"}},
		{f: sub("AO-1", domain.SubMerged, domain.SubPaymentFailed, t0.Add(2*time.Hour)), word: "cancelled upgrade", field: "cancelled upgrade",
			list: "AO-1 [PLAN-AO-1]: cancelled upgrade", tags: []string{"Subscription: cancelled upgrade"}, notTags: []string{"Subscription: card declined"}},
		{f: sub("AO-2", domain.SubActive, "", t0.Add(3*time.Hour)), word: "active", field: "active",
			list: "AO-1 [PLAN-AO-1]: cancelled upgrade\nAO-2 [PLAN-AO-2]: active", tags: []string{"Subscription: active", "Subscription: cancelled upgrade"}},
		// AO-3 is active too, so AO-2 leaving active keeps the active tag, and the contact reads active.
		{f: sub("AO-2", domain.SubPaused, domain.SubActive, t0.Add(4*time.Hour)), word: "paused", field: "active",
			list:     "AO-1 [PLAN-AO-1]: cancelled upgrade\nAO-2 [PLAN-AO-2]: paused\nAO-3: active",
			tags:     []string{"Subscription: paused", "Subscription: active"},
			otherSub: &domain.Subscription{Key: domain.SubscriptionKey(domain.UltraCart, "AO-3"), ID: "AO-3", Email: "sue@example.com", Status: domain.SubActive}},
		{f: sub("AO-2", domain.SubCancelled, domain.SubPaused, t0.Add(5*time.Hour)), word: "cancelled", field: "active",
			list: "AO-1 [PLAN-AO-1]: cancelled upgrade\nAO-2 [PLAN-AO-2]: cancelled\nAO-3: active",
			tags: []string{"Subscription: cancelled", "Subscription: active"}, notTags: []string{"Subscription: paused"}},
		{f: sub("AO-3", domain.SubDowngraded, domain.SubActive, t0.Add(6*time.Hour)), word: "cancelled download", field: "cancelled",
			list: "AO-1 [PLAN-AO-1]: cancelled upgrade\nAO-2 [PLAN-AO-2]: cancelled\nAO-3 [PLAN-AO-3]: cancelled download",
			tags: []string{"Subscription: cancelled download", "Subscription: cancelled"}, notTags: []string{"Subscription: active"}},
		{f: sub("AO-2", domain.SubDisabled, domain.SubCancelled, t0.Add(7*time.Hour)), word: "terminated", field: "cancelled download",
			list: "AO-1 [PLAN-AO-1]: cancelled upgrade\nAO-2 [PLAN-AO-2]: terminated\nAO-3 [PLAN-AO-3]: cancelled download",
			tags: []string{"Subscription: terminated"}, notTags: []string{"Subscription: cancelled"}},
	} {
		if tc.otherSub != nil {
			putSub(t, e, *tc.otherSub)
		}
		putSub(t, e, *tc.f.Sub)
		out := e.mustDeliver(tc.f)
		c, _ := e.fake.ContactByEmail("sue@example.com")
		if c.Fields[key] != tc.field || out.Done.(contactDone).Status != tc.word {
			t.Errorf("%s: field %q = %q, want %q; done %+v", tc.f.ID, key, c.Fields[key], tc.field, out.Done)
		}
		if c.Fields[list] != tc.list {
			t.Errorf("%s: subscriptions field = %q, want %q", tc.f.ID, c.Fields[list], tc.list)
		}
		for _, tag := range tc.tags {
			if !c.Tags[tag] {
				t.Errorf("%s: tag %q missing: %v", tc.f.ID, tag, c.Tags)
			}
		}
		for _, tag := range tc.notTags {
			if c.Tags[tag] {
				t.Errorf("%s: tag %q should be gone: %v", tc.f.ID, tag, c.Tags)
			}
		}
	}
}

// TestSeveralSubscriptionsLateFact: a fact delivered after later changes of the contact's other
// subscriptions (a replay, a retry) writes the fields as the subscriptions stand now, never the
// delivered fact's status for all of them.
func TestSeveralSubscriptionsLateFact(t *testing.T) {
	e := newEnv(t)
	key := e.fake.AddField("Subscription Status")
	a := domain.Subscription{Key: "ultracart:A", Source: domain.UltraCart, ID: "A", Email: "kim@example.com", Status: domain.SubActive, StatusAt: t0}
	b := domain.Subscription{Key: "ultracart:B", Source: domain.UltraCart, ID: "B", Email: "kim@example.com", Status: domain.SubCancelled, StatusAt: t0.Add(time.Hour)}
	putSub(t, e, a)
	putSub(t, e, b)
	f := domain.Fact{ID: domain.SubscriptionChangedID(testAcct, b.Key, b.Status, b.StatusAt), Account: testAcct,
		Kind: domain.FactSubscriptionChanged, Email: b.Email, OccurredAt: b.StatusAt, Sub: &b, FromStatus: domain.SubActive}
	e.mustDeliver(f)
	c, _ := e.fake.ContactByEmail("kim@example.com")
	if c.Fields[key] != "active" {
		t.Fatalf("one cancelled subscription beside an active one wrote %q for the contact, want \"active\"", c.Fields[key])
	}
	if !c.Tags["Subscription: cancelled"] {
		t.Fatalf("tags %v: the cancelled subscription's tag is missing", c.Tags)
	}
}

// putSub stores a subscription in the contact's history, as ingest does.
func putSub(t *testing.T, e *env, s domain.Subscription) {
	t.Helper()
	ctx := context.Background()
	repo := history.New(e.st)
	st, err := repo.LoadContact(ctx, testAcct, s.Email)
	if err != nil {
		t.Fatal(err)
	}
	w := &history.Writes{}
	w.PutSub(st, s)
	if err := repo.Commit(ctx, w); err != nil {
		t.Fatal(err)
	}
}

// TestAffiliateReferral sets the referrer fields to the partner's contact (found by the
// affiliate's email), keeps the first referrer, fills the affiliate field and applies the tag.
func TestAffiliateReferral(t *testing.T) {
	e := newEnv(t)
	affKey := e.fake.AddField("Referring Affiliate")
	p1 := e.fake.AddContact(map[string]string{"email": "jo@partners.example", "program_id": "1"})
	p2 := e.fake.AddContact(map[string]string{"email": "max@partners.example", "program_id": "1"})
	f := orderFact("F-1", "fay@example.com", []domain.LineItem{lineItem("SKU-1", 1, "10.00")}, "0", "0", "0", "10.00")
	f.Order.Affiliate = &domain.Affiliate{ID: "42", Name: "Jo Partner", Email: "jo@partners.example"}
	out := e.mustDeliver(f)
	c, _ := e.fake.ContactByEmail("fay@example.com")
	if c.Fields["freferrer"] != itoa(p1) || c.Fields["lreferrer"] != itoa(p1) || c.Fields[affKey] != "Jo Partner (42)" || !c.Tags["Affiliate referral"] {
		t.Fatalf("after the first referral: %+v", c)
	}
	if out.Done.(orderDone).PartnerID != p1 {
		t.Errorf("done %+v", out.Done)
	}
	// A later order through another partner moves the last referrer only.
	g := orderFact("F-2", "fay@example.com", []domain.LineItem{lineItem("SKU-1", 1, "10.00")}, "0", "0", "0", "10.00")
	g.Order.Affiliate = &domain.Affiliate{ID: "77", Email: "max@partners.example"}
	e.mustDeliver(g)
	c, _ = e.fake.ContactByEmail("fay@example.com")
	if c.Fields["freferrer"] != itoa(p1) || c.Fields["lreferrer"] != itoa(p2) || c.Fields[affKey] != "77" {
		t.Fatalf("after the second referral: %+v", c.Fields)
	}
	// An affiliate ONTRAPORT does not know still gets the tag and the field, with a note.
	h := orderFact("F-3", "gil@example.com", []domain.LineItem{lineItem("SKU-1", 1, "10.00")}, "0", "0", "0", "10.00")
	h.Order.Affiliate = &domain.Affiliate{ID: "99", Name: "Unknown"}
	out = e.mustDeliver(h)
	c, _ = e.fake.ContactByEmail("gil@example.com")
	if c.Fields["lreferrer"] != "0" || !c.Tags["Affiliate referral"] || !strings.Contains(out.Note, "no email") {
		t.Fatalf("unknown affiliate: %+v note %q", c, out.Note)
	}
	// Off: nothing about the affiliate is sent.
	set(&e.acct, "disable_affiliates", true)
	k := orderFact("F-4", "kim@example.com", []domain.LineItem{lineItem("SKU-1", 1, "10.00")}, "0", "0", "0", "10.00")
	k.Order.Affiliate = &domain.Affiliate{ID: "42", Email: "jo@partners.example"}
	e.mustDeliver(k)
	c, _ = e.fake.ContactByEmail("kim@example.com")
	if c.Fields["lreferrer"] != "0" || c.Tags["Affiliate referral"] {
		t.Fatalf("affiliates off: %+v", c)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestContactChanged keeps the aggregate fields current; a field the merchant has not created
// is left out with a note, and filled once it exists.
func TestContactChanged(t *testing.T) {
	e := newEnv(t)
	ltv := e.fake.AddField("Lifetime Value")
	count := e.fake.AddField("purchase count") // names match without regard to case
	yes := true
	c := domain.Contact{Account: testAcct, Email: "cal@example.com", FirstName: "Cal", LTV: usd("123.45"), PurchaseCount: 3,
		LastPurchaseAt: t0, EmailOptIn: &yes}
	f := domain.Fact{ID: domain.ContactChangedID(testAcct, c.Email, "h1"), Account: testAcct, Kind: domain.FactContactChanged, Email: c.Email, Contact: &c}
	out := e.mustDeliver(f)
	got, _ := e.fake.ContactByEmail("cal@example.com")
	if got.Fields[ltv] != "123.45" || got.Fields[count] != "3" || got.Fields["bulk_mail"] != "1" || got.Fields["firstname"] != "Cal" {
		t.Fatalf("contact %+v", got.Fields)
	}
	if !strings.Contains(out.Note, `"Last Purchase Date"`) {
		t.Errorf("note %q should name the missing field", out.Note)
	}
	last := e.fake.AddField("Last Purchase Date")
	e.clk.Advance(fieldMetaRetryWait + time.Minute)
	c.LTV = usd("100.00")
	f.ID = domain.ContactChangedID(testAcct, c.Email, "h2")
	e.mustDeliver(f)
	got, _ = e.fake.ContactByEmail("cal@example.com")
	if got.Fields[last] != itoa(t0.Unix()) || got.Fields[ltv] != "100.00" {
		t.Fatalf("after creating the field: %+v", got.Fields)
	}
	// A field given by key needs no lookup.
	set(&e.acct, "fields.ltv", ltv)
	metaCalls := calls(e, http.MethodGet, pathContactsMeta)
	set(&e.acct, "fields.purchase_count", "-", "fields.last_purchase", "-")
	c.LTV = usd("90.00")
	e.mustDeliver(f)
	got, _ = e.fake.ContactByEmail("cal@example.com")
	if got.Fields[ltv] != "90.00" || calls(e, http.MethodGet, pathContactsMeta) != metaCalls {
		t.Fatalf("field by key: %+v", got.Fields)
	}
}

// TestEmailChanged moves the ONTRAPORT contact to the new email.
func TestEmailChanged(t *testing.T) {
	e := newEnv(t)
	id := e.fake.AddContact(map[string]string{"email": "old@example.com"})
	c := domain.Contact{Account: testAcct, Email: "new@example.com", FirstName: "Nia"}
	f := domain.Fact{ID: domain.EmailChangedID(testAcct, "old@example.com", "new@example.com"), Account: testAcct,
		Kind: domain.FactEmailChanged, Email: "new@example.com", OldEmail: "old@example.com", Contact: &c}
	out := e.mustDeliver(f)
	got, ok := e.fake.ContactByEmail("new@example.com")
	if !ok || got.ID != id || out.Done.(contactDone).ContactID != id || len(e.fake.Contacts()) != 1 {
		t.Fatalf("contact %+v, done %+v", got, out.Done)
	}
}

// TestItemChanged creates the product, then updates it.
func TestItemChanged(t *testing.T) {
	e := newEnv(t)
	it := domain.Item{Source: domain.UltraCart, SKU: "SKU-9", Name: "Widget", Price: usd("19.00")}
	f := domain.Fact{ID: "i1", Account: testAcct, Kind: domain.FactItemChanged, Item: &it}
	out := e.mustDeliver(f)
	d := out.Done.(productDone)
	if !d.Created || len(e.fake.Products()) != 1 || e.fake.Products()[0].Price != "19.00" {
		t.Fatalf("create: %+v %+v", d, e.fake.Products())
	}
	it.Name, it.Price = "Widget Pro", usd("24.50")
	f.ID = "i2"
	out = e.mustDeliver(f)
	p := e.fake.Products()
	if out.Done.(productDone).Created || len(p) != 1 || p[0].Name != "Widget Pro" || p[0].Price != "24.50" {
		t.Fatalf("update: %+v %+v", out.Done, p)
	}
	it.Deleted = true
	f.ID = "i3"
	if out = e.mustDeliver(f); out.Status != history.DeliverySkipped {
		t.Fatalf("deleted item: %s", out.Status)
	}
}

// TestDryRun: without an API key every request is recorded, none is sent, and nothing is
// remembered that a later real delivery could mistake for an ONTRAPORT id.
func TestDryRun(t *testing.T) {
	e := newEnv(t, withAccount(func(a *accounts.Account) { set(a, keyAPIKey, accounts.Secret{}, keyAppID, "") }))
	f := orderFact("D-1", "dee@example.com", []domain.LineItem{lineItem("SKU-1", 2, "5.00")}, "3.00", "0", "0", "13.00")
	f.Order.Affiliate = &domain.Affiliate{ID: "42", Email: "jo@partners.example"}
	out, err := e.deliver(f)
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != history.DeliveryDryRun || !strings.Contains(out.Note, "dry run") {
		t.Fatalf("status %s note %q", out.Status, out.Note)
	}
	var paths []string
	for _, x := range out.Exchanges {
		paths = append(paths, x.Method+" "+strings.TrimPrefix(strings.SplitN(x.URL, "?", 2)[0], e.fake.URL))
		if x.Status != 0 || x.RequestHeaders["Api-Key"] != redacted {
			t.Errorf("exchange %+v", x)
		}
	}
	// No lookup by external_order_id: no earlier attempt left its outcome unknown.
	want := []string{"GET /object/getByEmail", "GET /Contacts/meta", "POST /Contacts/saveorupdate",
		"PUT /objects/tagByName", "GET /Products", "POST /Products", "GET /Products", "POST /Products",
		"POST /transaction/processManual"}
	if strings.Join(paths, ", ") != strings.Join(want, ", ") {
		t.Errorf("recorded\n %s\nwant\n %s", strings.Join(paths, ", "), strings.Join(want, ", "))
	}
	last := out.Exchanges[len(out.Exchanges)-1]
	var tx manualTransaction
	if err := json.Unmarshal([]byte(last.RequestBody), &tx); err != nil || tx.Offer.GrandTotal != "13.00" || tx.ExternalOrderID != "ultracart:D-1" {
		t.Fatalf("recorded processManual %s (%v)", last.RequestBody, err)
	}
	if n := len(e.fake.Calls()); n != 0 {
		t.Fatalf("a dry run sent %d requests", n)
	}
	e.markDone(f, out)
	// With a key, the refund of that order does not use the dry run's placeholder.
	set(&e.acct, keyAPIKey, accounts.NewSecret(testKey), keyAppID, testAppID)
	if _, err := e.deliver(refundFact(f, "13.00", "13.00")); !errors.Is(err, ErrNoTransaction) {
		t.Fatalf("refund after a dry-run purchase: %v", err)
	}
	out = e.mustDeliver(orderFact("D-2", "dee@example.com", []domain.LineItem{lineItem("SKU-1", 2, "5.00")}, "0", "0", "0", "10.00"))
	if out.Status != history.DeliverySent || len(e.fake.TransactionsFor("ultracart:D-2")) != 1 {
		t.Fatalf("a real delivery after a dry run: %s %q", out.Status, out.Note)
	}
}

// TestFlowsOff skips each fact kind whose flow is off, without a request.
func TestFlowsOff(t *testing.T) {
	e := newEnv(t, withAccount(func(a *accounts.Account) {
		set(a, "disable_contacts", true, "disable_orders", true, "disable_refunds", true, "disable_subscriptions", true, "disable_products", true)
	}))
	o := orderFact("X-1", "x@example.com", []domain.LineItem{lineItem("SKU-1", 1, "1.00")}, "0", "0", "0", "1.00")
	for _, f := range []domain.Fact{
		o, refundFact(o, "1.00", "1.00"),
		{ID: "c", Account: testAcct, Kind: domain.FactContactChanged, Email: "x@example.com", Contact: &domain.Contact{Email: "x@example.com"}},
		{ID: "e", Account: testAcct, Kind: domain.FactEmailChanged, Email: "x@example.com", OldEmail: "y@example.com"},
		{ID: "s", Account: testAcct, Kind: domain.FactSubscriptionChanged, Email: "x@example.com", Sub: &domain.Subscription{Status: domain.SubActive}},
		{ID: "i", Account: testAcct, Kind: domain.FactItemChanged, Item: &domain.Item{SKU: "S"}},
		{ID: "sh", Account: testAcct, Kind: domain.FactOrderShipped, Email: "x@example.com", Order: o.Order},
		{ID: "ca", Account: testAcct, Kind: domain.FactCartAbandoned, Email: "x@example.com"},
	} {
		out, err := e.deliver(f)
		if err != nil || out.Status != history.DeliverySkipped || out.Note == "" {
			t.Errorf("%s: %v %s %q", f.Kind, err, out.Status, out.Note)
		}
	}
	if n := len(e.fake.Calls()); n != 0 {
		t.Fatalf("%d requests", n)
	}
}

// TestCartUpdatedIsIterables: a storefront cart change has no ONTRAPORT counterpart; it is
// recorded as skipped, with why, and nothing is called.
func TestCartUpdatedIsIterables(t *testing.T) {
	e := newEnv(t)
	cart := &domain.Cart{Source: domain.Storefront, CartID: "c1", Email: "x@example.com", Total: domain.Money{Minor: 100, Currency: "USD"}}
	out, err := e.deliver(domain.Fact{ID: "cu", Account: testAcct, Kind: domain.FactCartUpdated, Email: "x@example.com", Cart: cart})
	if err != nil || out.Status != history.DeliverySkipped || !strings.Contains(out.Note, "no counterpart for CartUpdated") {
		t.Fatalf("%v %s %q", err, out.Status, out.Note)
	}
	if n := len(e.fake.Calls()); n != 0 {
		t.Fatalf("%d requests", n)
	}
}

// TestBadSettingsPark: a malformed setting parks the delivery with the setting named.
func TestBadSettingsPark(t *testing.T) {
	e := newEnv(t, withAccount(func(a *accounts.Account) { set(a, keyRate, "lots") }))
	_, err := e.deliver(orderFact("S-1", "s@example.com", nil, "0", "0", "0", "1.00"))
	if !deliver.IsPermanent(err) || !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), "requests_per_minute") {
		t.Fatalf("err %v", err)
	}
}

// TestRejectedRequestParks: ONTRAPORT's 4xx answer parks the delivery with its body, and the
// exchanges come back with the error.
func TestRejectedRequestParks(t *testing.T) {
	e := newEnv(t)
	f := orderFact("E-1", "not-an-email", []domain.LineItem{lineItem("SKU-1", 1, "1.00")}, "0", "0", "0", "1.00")
	out, err := e.deliver(f)
	// The contact fields' keys are looked up first (Contacts/meta), then the merge is refused.
	if !deliver.IsPermanent(err) || !strings.Contains(err.Error(), "Invalid email") || len(out.Exchanges) != 2 ||
		!strings.Contains(out.Exchanges[0].URL, "/Contacts/meta") || out.Exchanges[1].Status != 422 {
		t.Fatalf("err %v, exchanges %+v", err, out.Exchanges)
	}
}

// TestConcurrentDeliveriesLogOnce: processes delivering the same order at the same moment (a
// visibility timeout that ran out mid-delivery) log it once; the others adopt it.
func TestConcurrentDeliveriesLogOnce(t *testing.T) {
	e := newEnv(t)
	f := orderFact("P-1", "pat@example.com", []domain.LineItem{lineItem("SKU-1", 1, "10.00")}, "0", "0", "0", "10.00")
	// A claim held by another process sends the delivery back to the queue, without a request
	// to processManual.
	cl, err := (cache{st: e.st, now: e.clk.Now, acct: testAcct}).claimTx(context.Background(), "ultracart:P-1", claimTTL)
	if err != nil {
		t.Fatal(err)
	}
	release := func() { cl.release(context.Background()) }
	_, err = e.deliver(f)
	var ra *deliver.RetryAfterError
	if !errors.As(err, &ra) || !errors.Is(err, ErrInProgress) || ra.After <= 0 || calls(e, http.MethodPost, pathProcessManual) != 0 {
		t.Fatalf("while claimed: %v", err)
	}
	release()

	const n = 8
	results := make(chan orderDone, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			d := New(e.dest.o)
			for {
				out, err := d.Deliver(context.Background(), e.acct, f)
				if errors.Is(err, ErrInProgress) {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				results <- out.Done.(orderDone)
				return
			}
		}()
	}
	created := 0
	for range n {
		select {
		case err := <-errs:
			t.Fatal(err)
		case d := <-results:
			if !d.Adopted {
				created++
			}
		case <-time.After(30 * time.Second):
			t.Fatal("deliveries did not finish")
		}
	}
	if txs := e.fake.TransactionsFor("ultracart:P-1"); len(txs) != 1 || created != 1 {
		t.Fatalf("%d transactions, %d deliveries created one", len(txs), created)
	}
}

// TestCallsPerOrder counts ONTRAPORT requests per new order (README, Figures): the first order
// of a buyer with two products new to ONTRAPORT (one of them the tax pseudo-product), then a
// repeat order of the same products, which takes the contact merge and the transaction alone.
func TestCallsPerOrder(t *testing.T) {
	reads := &cacheReads{}
	e := newEnv(t, func(_ *ontraportfake.Options, o *Options, _ *accounts.Account) {
		reads.Store = o.Store
		o.Store = reads
	})
	seen := 0
	since := func() []string {
		var out []string
		for _, c := range e.fake.Calls()[seen:] {
			out = append(out, c.Method+" "+c.Path)
		}
		seen = len(e.fake.Calls())
		return out
	}
	e.mustDeliver(orderFact("N-1", "nia@example.com", []domain.LineItem{lineItem("SKU-1", 1, "10.00")}, "0", "0.80", "0", "10.80"))
	first := since()
	// The contact fields' keys are read once (and kept for an hour), for the payment status.
	want := []string{"GET /Contacts/meta", "POST /Contacts/saveorupdate", "GET /Products", "POST /Products", "GET /Products",
		"POST /Products", "POST /transaction/processManual"}
	if strings.Join(first, ", ") != strings.Join(want, ", ") {
		t.Errorf("first order: %d calls\n %s\nwant\n %s", len(first), strings.Join(first, ", "), strings.Join(want, ", "))
	}
	reads.counts()
	e.mustDeliver(orderFact("N-2", "nia@example.com", []domain.LineItem{lineItem("SKU-1", 2, "10.00")}, "0", "1.60", "0", "21.60"))
	repeat := since()
	want = []string{"POST /Contacts/saveorupdate", "POST /transaction/processManual"}
	if strings.Join(repeat, ", ") != strings.Join(want, ", ") {
		t.Errorf("repeat order of known products: %d calls\n %s\nwant\n %s", len(repeat), strings.Join(repeat, ", "), strings.Join(want, ", "))
	}
	// The remembered ids (field keys, contact, products, transaction) are read together.
	if gets, many := reads.counts(); gets != 0 || many != 1 {
		t.Errorf("repeat order: %d reads of single cached ids and %d reads of many; want them all in one", gets, many)
	}
	c := domain.Contact{Account: testAcct, Email: "nia@example.com", FirstName: "Nia", PurchaseCount: 2}
	e.mustDeliver(domain.Fact{ID: domain.ContactChangedID(testAcct, c.Email, "h1"), Account: testAcct,
		Kind: domain.FactContactChanged, Email: c.Email, Contact: &c})
	if gets, many := reads.counts(); gets != 0 || many != 1 {
		t.Errorf("profile of a known contact: %d reads of single cached ids and %d reads of many; want them all in one", gets, many)
	}
	t.Logf("ONTRAPORT calls: first order with two new products %d, repeat order of known products %d", len(first), len(repeat))
}

// cacheReads counts the reads of this destination's cached ids (since the last counts).
type cacheReads struct {
	store.Store
	mu         sync.Mutex
	gets, many int
}

func (c *cacheReads) Get(ctx context.Context, pk, sk string) (store.Item, error) {
	if strings.Contains(pk, "#OP") {
		c.mu.Lock()
		c.gets++
		c.mu.Unlock()
	}
	return c.Store.Get(ctx, pk, sk)
}

func (c *cacheReads) GetMany(ctx context.Context, keys []store.Key) (map[store.Key]store.Item, error) {
	c.mu.Lock()
	c.many++
	c.mu.Unlock()
	return c.Store.GetMany(ctx, keys)
}

func (c *cacheReads) counts() (gets, many int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gets, many = c.gets, c.many
	c.gets, c.many = 0, 0
	return gets, many
}
