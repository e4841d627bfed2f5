package ontraport

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestPlanOrder checks, for each fixture order, the exact lines and that they add up to the
// source total to the minor unit.
func TestPlanOrder(t *testing.T) {
	var cases []struct {
		Name  string       `json:"name"`
		Order domain.Order `json:"order"`
		Raw   [][]any      `json:"lines"`
		Error string       `json:"error"`
	}
	readJSONFile(t, "plan_order.json", &cases)
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			lines, err := planOrder(tc.Order)
			if tc.Error != "" {
				if err == nil || !strings.Contains(err.Error(), tc.Error) {
					t.Fatalf("planOrder error = %v, want one mentioning %q", err, tc.Error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			var sum int64
			for _, l := range lines {
				got = append(got, fmt.Sprintf("%s %d×%s", l.SKU, l.Qty, l.Unit.Decimal()))
				sum += l.amount()
			}
			var want []string
			for _, w := range tc.Raw {
				want = append(want, fmt.Sprintf("%s %v×%s", w[0], w[1], w[2]))
			}
			if strings.Join(got, ", ") != strings.Join(want, ", ") {
				t.Errorf("lines\n got %s\nwant %s", strings.Join(got, ", "), strings.Join(want, ", "))
			}
			if sum != tc.Order.Total.Minor {
				t.Errorf("lines add up to %d, total is %d", sum, tc.Order.Total.Minor)
			}
		})
	}
}

// TestPlanOrderAddsUpAlways plans random orders (discounts, shipping, handling, tax, odd
// quantities, surcharges) and checks the lines always equal the total and never go negative.
func TestPlanOrderAddsUpAlways(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		o := domain.Order{Key: fmt.Sprintf("ultracart:R-%d", i), Currency: "USD"}
		var gross int64
		for range 1 + rnd.IntN(4) {
			unit := rnd.Int64N(50000)
			qty := 1 + rnd.Int64N(7)
			disc := int64(0)
			if rnd.IntN(3) == 0 {
				disc = rnd.Int64N(unit*qty + 1)
			}
			o.Items = append(o.Items, domain.LineItem{SKU: fmt.Sprintf("S%d", rnd.IntN(5)), Quantity: qty,
				UnitPrice: domain.Money{Minor: unit, Currency: "USD"}, Discount: domain.Money{Minor: disc, Currency: "USD"}})
			gross += unit*qty - disc
		}
		o.Shipping = domain.Money{Minor: rnd.Int64N(2000), Currency: "USD"}
		o.Handling = domain.Money{Minor: rnd.Int64N(300), Currency: "USD"}
		o.Tax = domain.Money{Minor: rnd.Int64N(3000), Currency: "USD"}
		parts := gross + o.Shipping.Minor + o.Handling.Minor + o.Tax.Minor
		// Totals below the parts (order coupons), above them (fees), and zero.
		total := max(parts-rnd.Int64N(parts+1)/2+rnd.Int64N(500)-250, 0)
		if rnd.IntN(50) == 0 {
			total = 0
		}
		o.Total = domain.Money{Minor: total, Currency: "USD"}
		lines, err := planOrder(o)
		if errors.Is(err, ErrNothingToLog) && total == 0 {
			continue
		}
		if err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
		var sum int64
		for _, l := range lines {
			if l.Qty < 1 || l.Unit.Minor < 0 {
				t.Fatalf("order %d: line %+v", i, l)
			}
			sum += l.amount()
		}
		if sum != total {
			t.Fatalf("order %d: lines add up to %d, total %d: %+v", i, sum, total, lines)
		}
	}
}

func TestAllocate(t *testing.T) {
	for _, tc := range []struct {
		amount  int64
		weights []int64
		want    []int64
	}{
		{0, []int64{5, 5}, []int64{0, 0}},
		{1, []int64{5, 5}, []int64{1, 0}},
		{3, []int64{1, 1, 1}, []int64{1, 1, 1}},
		{10, []int64{10, 0}, []int64{10, 0}},
		{500, []int64{2997, 2000}, []int64{300, 200}},
		{7, []int64{1, 100}, []int64{0, 7}},
		{9_000_000_000_000, []int64{9_000_000_000_000, 9_000_000_000_000}, []int64{4_500_000_000_000, 4_500_000_000_000}},
	} {
		got := allocate(tc.amount, tc.weights)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("allocate(%d, %v) = %v, want %v", tc.amount, tc.weights, got, tc.want)
		}
	}
}

// TestExplicitIDsGuard: an empty or zero selection means "all" to ONTRAPORT and must never be
// sent.
func TestExplicitIDsGuard(t *testing.T) {
	for _, tc := range []struct {
		ids  []int64
		fail bool
	}{
		{nil, true}, {[]int64{}, true}, {[]int64{0}, true}, {[]int64{-3}, true}, {[]int64{7, 0}, true},
		{[]int64{7}, false}, {[]int64{7, 9}, false},
	} {
		_, err := explicitIDs(tc.ids)
		if (err != nil) != tc.fail || (tc.fail && !errors.Is(err, ErrEmptySelection)) {
			t.Errorf("explicitIDs(%v) = %v, want failure %v", tc.ids, err, tc.fail)
		}
	}
}

func TestRefundRepresentation(t *testing.T) {
	if got := refundExternalID("ultracart:A-1", usd("12.34")); got != "ultracart:A-1:refund:1234USD" {
		t.Errorf("refundExternalID = %q", got)
	}
	lines := takeBack(skuRefund, usd("12.34"))
	if len(lines) != 1 || lines[0].SKU != skuRefund || lines[0].Qty != 1 || lines[0].Unit.Decimal() != "-12.34" {
		t.Errorf("refundLines = %+v", lines)
	}
}

// TestStatusWordsAndTags maps every domain status through the defaults and overrides.
func TestStatusWordsAndTags(t *testing.T) {
	def, err := configFor(testAccount())
	if err != nil {
		t.Fatal(err)
	}
	custom := testAccount()
	set(&custom, "subscription_status.disabled", "cancelled download", "tags.subscription", "UC {status}")
	cus, err := configFor(custom)
	if err != nil {
		t.Fatal(err)
	}
	noTags := testAccount()
	set(&noTags, "tags.subscription", "-")
	nt, _ := configFor(noTags)
	for _, tc := range []struct {
		cfg    config
		status domain.SubscriptionStatus
		word   string
		tag    string
	}{
		{def, domain.SubActive, "active", "Subscription: active"},
		{def, domain.SubPaymentFailed, "card declined", "Subscription: card declined"},
		{def, domain.SubMerged, "cancelled upgrade", "Subscription: cancelled upgrade"},
		{def, domain.SubCancelled, "cancelled", "Subscription: cancelled"},
		{def, domain.SubDisabled, "terminated", "Subscription: terminated"},
		{def, domain.SubPaused, "paused", "Subscription: paused"},
		{def, "trialing", "trialing", "Subscription: trialing"},
		{cus, domain.SubDisabled, "cancelled download", "UC cancelled download"},
		{cus, domain.SubActive, "active", "UC active"},
		{nt, domain.SubActive, "active", ""},
	} {
		w := tc.cfg.statusWord(tc.status)
		if w != tc.word || tc.cfg.subscriptionTag(w) != tc.tag {
			t.Errorf("%s: word %q tag %q, want %q %q", tc.status, w, tc.cfg.subscriptionTag(w), tc.word, tc.tag)
		}
	}
}

func TestConfigFor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*accounts.Account)
		check func(config) bool
		err   string
	}{
		{"defaults", func(*accounts.Account) {}, func(c config) bool {
			return !c.dry && c.perMinute == 180 && c.invoiceTemplate == invoiceSuppressed && c.orders && c.refunds
		}, ""},
		{"no key runs dry", func(a *accounts.Account) { set(a, keyAPIKey, accounts.Secret{}, keyAppID, "") }, func(c config) bool { return c.dry }, ""},
		{"invoice on", func(a *accounts.Account) { set(a, keyInvoice, true, keyTemplate, "7") }, func(c config) bool { return c.invoiceTemplate == 7 }, ""},
		{"scaled budget", func(a *accounts.Account) { set(a, keyRate, "12") }, func(c config) bool { return c.perMinute == 12 }, ""},
		{"empty budget is the default", func(a *accounts.Account) { set(a, keyRate, "") }, func(c config) bool { return c.perMinute == 180 }, ""},
		{"flows off", func(a *accounts.Account) { set(a, "disable_refunds", true, "disable_affiliates", true) }, func(c config) bool { return !c.refunds && !c.affiliates && c.orders }, ""},
		{"bad budget", func(a *accounts.Account) { set(a, keyRate, "180/min") }, nil, "requests_per_minute"},
		{"zero budget", func(a *accounts.Account) { set(a, keyRate, "0") }, nil, "requests_per_minute"},
		{"bad template", func(a *accounts.Account) { set(a, keyInvoice, true, keyTemplate, "default") }, nil, "invoice_template"},
		{"key without app id", func(a *accounts.Account) { set(a, keyAppID, "") }, nil, "app_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testAccount()
			tc.edit(&a)
			c, err := configFor(a)
			if tc.err != "" {
				if !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want a settings error about %s", err, tc.err)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Fatalf("config %+v, %v", c, err)
			}
		})
	}
}

func TestContactFields(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		name string
		p    person
		want string
	}{
		{"empty values are left out", person{Email: "a@example.com", FirstName: " "},
			`{"email":"a@example.com"}`},
		{"names, address, phone", person{Email: "a@example.com", FirstName: "Ann", LastName: "Lee", Company: "Acme",
			Phone: "+12175550100", Address: domain.Address{Address1: "1 Main St", Address2: "Apt 2", City: "Springfield", Region: "IL", PostalCode: "62701", CountryCode: "US"}},
			`{"address":"1 Main St","address2":"Apt 2","city":"Springfield","company":"Acme","country":"US","email":"a@example.com","firstname":"Ann","lastname":"Lee","office_phone":"+12175550100","state":"IL","zip":"62701"}`},
		{"opted in to both", person{Email: "a@example.com", Phone: "+12175550100", EmailOptIn: &yes, SMSOptIn: &yes},
			`{"bulk_mail":1,"bulk_sms":1,"email":"a@example.com","office_phone":"+12175550100","sms_number":"+12175550100"}`},
		{"opted out of both", person{Email: "a@example.com", Phone: "+12175550100", EmailOptIn: &no, SMSOptIn: &no},
			`{"bulk_mail":0,"bulk_sms":0,"email":"a@example.com","office_phone":"+12175550100"}`},
	} {
		b, _ := json.Marshal(contactFields(tc.p))
		if string(b) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, b, tc.want)
		}
	}
}

func TestAffiliateLabel(t *testing.T) {
	for _, tc := range []struct {
		a    domain.Affiliate
		want string
	}{
		{domain.Affiliate{ID: "42", Name: "Jo Partner"}, "Jo Partner (42)"},
		{domain.Affiliate{ID: "42"}, "42"},
		{domain.Affiliate{Name: "Jo Partner"}, "Jo Partner"},
	} {
		if got := affiliateLabel(tc.a); got != tc.want {
			t.Errorf("affiliateLabel(%+v) = %q, want %q", tc.a, got, tc.want)
		}
	}
}

// TestBuildTransactionGolden pins the processManual body of a discounted order with shipping,
// handling and tax (testdata/process_manual.golden.json; go test -update rewrites it).
func TestBuildTransactionGolden(t *testing.T) {
	var cases []struct {
		Name  string       `json:"name"`
		Order domain.Order `json:"order"`
	}
	readJSONFile(t, "plan_order.json", &cases)
	o := cases[1].Order
	lines, err := planOrder(o)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for i, l := range lines {
		ids[l.SKU] = int64(501 + i)
	}
	tx, err := buildTransaction(77, o.Key, t0, invoiceSuppressed, lines, ids)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(tx, "", "  ")
	got = append(got, '\n')
	path := filepath.Join("testdata", "process_manual.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("processManual body\n%s\nwant\n%s", got, want)
	}
	if tx.Offer.GrandTotal.String() != o.Total.Decimal() || tx.TransDate != t0.UnixMilli() || tx.ChargeNow != "chargeLog" {
		t.Errorf("grand total %s (want %s), trans_date %d, chargeNow %s", tx.Offer.GrandTotal, o.Total.Decimal(), tx.TransDate, tx.ChargeNow)
	}
}
