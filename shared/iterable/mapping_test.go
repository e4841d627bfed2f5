package iterable_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden is what a dry run records for one fact: the exact requests, in order.
type golden struct {
	Status   string          `json:"status"`
	Note     string          `json:"note,omitempty"`
	Error    string          `json:"error,omitempty"`
	Requests []goldenRequest `json:"requests"`
}

type goldenRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// TestMappingGolden runs every fact fixture through a dry run, which records the exact requests
// without sending them, and compares them with testdata/golden (go test -update rewrites them).
func TestMappingGolden(t *testing.T) {
	for _, name := range factNames(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOpts{noSpec: true})
			f := loadFact(t, name)
			out, err := e.dest.Deliver(context.Background(), e.dry(), f)
			g := golden{Status: out.Status, Note: out.Note, Requests: []goldenRequest{}}
			if err != nil {
				g.Error = err.Error()
			}
			for _, x := range out.Exchanges {
				if x.Status != 0 || x.ResponseBody != "" {
					t.Fatalf("a dry run made a call: %+v", x)
				}
				var body bytes.Buffer
				if err := json.Indent(&body, []byte(x.RequestBody), "    ", "  "); err != nil {
					t.Fatalf("request body is not JSON: %v\n%s", err, x.RequestBody)
				}
				g.Requests = append(g.Requests, goldenRequest{Method: x.Method, URL: x.URL, Headers: x.RequestHeaders, Body: body.Bytes()})
			}
			got, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("requests for %s changed:\n%s\nwant\n%s", name, got, want)
			}
			for _, x := range out.Exchanges {
				if strings.Contains(x.RequestBody, testKey) || x.RequestHeaders["Api-Key"] != "[redacted]" {
					t.Fatalf("the API key is not redacted: %+v", x)
				}
			}
		})
	}
}

// TestFieldTypesNeverChange sends values that tempt a type change (whole and fractional
// amounts, empty and set dates) to the fake, which fixes each field's type on first sight as
// Iterable does and refuses a change.
func TestFieldTypesNeverChange(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	base := loadFact(t, "contact_changed")
	for i, ltv := range []string{"100.00", "129.90", "0.00", "5"} {
		f := base
		c := *f.Contact
		m, err := domain.ParseMoney(ltv, "USD")
		if err != nil {
			t.Fatal(err)
		}
		c.LTV, c.AOV, c.GrossRevenue = m, m, m
		c.PurchaseCount = i
		if i == 2 {
			c.FirstPurchaseAt, c.LastPurchaseAt = time.Time{}, time.Time{}
			c.Phone = ""
		}
		f.Contact = &c
		f.ID = base.ID + string(rune('a'+i))
		if _, err := e.dest.Deliver(ctx, e.acct, f); err != nil {
			t.Fatalf("profile with ltv %s: %v", ltv, err)
		}
	}
	jpy := loadFact(t, "order_placed")
	o := *jpy.Order
	o.Total = domain.Money{Minor: 1200, Currency: "JPY"}
	jpy.Order = &o
	for _, name := range []string{"order_placed", "order_placed_rebill"} {
		if _, err := e.dest.Deliver(ctx, e.acct, loadFact(t, name)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := e.dest.Deliver(ctx, e.acct, jpy); err != nil {
		t.Fatalf("a purchase in yen (no decimals) changed a field's type: %v", err)
	}
	for field, want := range map[string]string{
		"user.ltv": "double", "user.purchaseCount": "long", "user.lastPurchaseDate": "date", "user.smsOptIn": "boolean",
		"user.address": "object", "purchase.total": "double", "purchase.purchaseDate": "date", "item.price": "double",
	} {
		if got := e.fake.FieldType(field); got != want {
			t.Errorf("%s is %q, want %q", field, got, want)
		}
	}
}

// TestEveryRequestMatchesTheSpec sends every fixture's requests to the fake with Iterable's
// Swagger file loaded (skipped when it is absent).
func TestEveryRequestMatchesTheSpec(t *testing.T) {
	if _, ok := iterablefake.FindSpec(); !ok {
		t.Skip("Iterable's Swagger file (../shared/specs/iterable-api-docs.json) is absent")
	}
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	// The review request reads the order's contact; give it one.
	w := &history.Writes{}
	st, err := history.New(e.st).LoadContact(ctx, "acme", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	w.PutProfile(st, domain.Contact{Account: "acme", Email: "ann@example.com"})
	if err := history.New(e.st).Commit(ctx, w); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, name := range factNames(t) {
		f := loadFact(t, name)
		if name == "email_changed" {
			// Iterable must know the old address for the change to apply.
			if _, err := e.dest.Deliver(ctx, e.acct, loadFact(t, "contact_changed")); err != nil {
				t.Fatal(err)
			}
		}
		out, err := e.dest.Deliver(ctx, e.acct, f)
		if err != nil {
			t.Fatalf("%s: %v (%+v)", name, err, out.Exchanges)
		}
		sent += len(out.Exchanges)
	}
	if errs := e.fake.SpecErrors(); len(errs) > 0 {
		t.Fatalf("requests that do not match Iterable's spec:\n%s", strings.Join(errs, "\n"))
	}
	if sent < 15 {
		t.Fatalf("only %d requests were checked", sent)
	}
	// The fake's validator is not vacuous: a misspelt field is refused.
	req, _ := http.NewRequest(http.MethodPost, e.fake.URL+iterable.PathEventsTrack,
		strings.NewReader(`{"email":"a@example.com","eventName":"x","eventname":"typo"}`))
	req.Header.Set("Api-Key", testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.fake.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || len(e.fake.SpecErrors()) != 1 {
		t.Fatalf("a misspelt field answered %d; spec errors %v", resp.StatusCode, e.fake.SpecErrors())
	}
}

// TestShipToOnPurchaseAndProfile: the ship-to address travels on the purchase and on the profile
// as shippingAddress, beside the billing address; an order shipped nowhere sends none.
func TestShipToOnPurchaseAndProfile(t *testing.T) {
	f := loadFact(t, "order_placed")
	p := iterable.Purchase(f.Email, *f.Order, iterable.Settings{}, f.OccurredAt)
	sa, _ := p.DataFields["shippingAddress"].(iterable.Fields)
	if sa["city"] != "Portland" || sa["address1"] != "9 Elm Rd" || sa["postalCode"] != "97201" {
		t.Fatalf("purchase shippingAddress %v", p.DataFields["shippingAddress"])
	}
	o := *f.Order
	o.ShipTo = domain.Address{FirstName: "Ann"}
	if _, ok := iterable.Purchase(f.Email, o, iterable.Settings{}, f.OccurredAt).DataFields["shippingAddress"]; ok {
		t.Fatal("an order with no ship-to place sent a shippingAddress")
	}
	c := loadFact(t, "contact_changed").Contact
	u := iterable.ProfileUpdate(*c)
	if sa, _ := u.DataFields["shippingAddress"].(iterable.Fields); sa["city"] != "Portland" {
		t.Fatalf("profile shippingAddress %v", u.DataFields["shippingAddress"])
	}
	if a, _ := u.DataFields["address"].(iterable.Fields); a["city"] != "Springfield" {
		t.Fatalf("profile address %v", u.DataFields["address"])
	}
}

// TestNextRebillOnProfile: renewal reminders read nextRebillDate; once nothing is scheduled the
// date is cleared (null) and hasScheduledRebill says so, and a contact that never subscribed
// gets neither field.
func TestNextRebillOnProfile(t *testing.T) {
	c := *loadFact(t, "contact_changed").Contact
	u := iterable.ProfileUpdate(c)
	if u.DataFields["nextRebillDate"] != iterable.Date(c.NextRebillAt) || u.DataFields["hasScheduledRebill"] != true {
		t.Fatalf("scheduled: nextRebillDate %v, hasScheduledRebill %v", u.DataFields["nextRebillDate"], u.DataFields["hasScheduledRebill"])
	}
	c.NextRebillAt = time.Time{}
	u = iterable.ProfileUpdate(c)
	if v, ok := u.DataFields["nextRebillDate"]; !ok || v != nil || u.DataFields["hasScheduledRebill"] != false {
		t.Fatalf("none scheduled: nextRebillDate %v (sent %v), hasScheduledRebill %v", v, ok, u.DataFields["hasScheduledRebill"])
	}
	c.Subscriptions = nil
	u = iterable.ProfileUpdate(c)
	for _, k := range []string{"nextRebillDate", "hasScheduledRebill"} {
		if _, ok := u.DataFields[k]; ok {
			t.Errorf("a contact without subscriptions got %s", k)
		}
	}
}
