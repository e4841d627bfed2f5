package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/reviews"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

const iterableE2EKey = "itbl-e2e-key-42"

func ucCustomer(oid int, email string) string {
	return fmt.Sprintf(`{"events":[{"customer_update":{"customer_profile_oid":%d,"merchant_id":"DEMO","email":%q,
 "billing":[{"customer_billing_oid":1,"first_name":"Ann","last_name":"Lee","country_code":"US","default_billing":true}],"privacy":{"marketing":true}}}]}`, oid, email)
}

const ucCartAbandon = `{"events":[{"checkout_cart_abandon":{"cart_id":"E2ECART1","merchant_id":"DEMO","base_currency_code":"USD","currency_code":"USD",
 "billing":{"first_name":"Ava","email":"ava@example.com","country_code":"US"},
 "items":[{"item_id":"TEA-SAMPLER","description":"Tea sampler","quantity":1,"unit_cost":{"currency_code":"USD","value":19.99},"default_image_url":"https://cdn.example.com/tea.jpg"}],
 "summary":{"total":{"currency_code":"USD","value":19.99}},"checkout":{"return_url":"https://shop.example.com/checkout/return?cart=E2ECART1"}}}]}`

// TestIterableEndToEnd runs `cartrelay serve` with Iterable pointed at the fake: UltraCart
// webhooks become purchases, profiles, refund events, an email change that lands before the
// purchase that follows it, and a cart; review links are answered by the connect route. A
// second account without an API key records the exact requests instead of sending them.
func TestIterableEndToEnd(t *testing.T) {
	spec, _ := iterablefake.FindSpec()
	fake, err := iterablefake.New(iterablefake.Options{APIKey: iterableE2EKey, SpecPath: spec})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()

	data := t.TempDir()
	template := "https://shop.example.com/reviews/new?sku={sku}"
	putAccount(t, data, "acme", fmt.Sprintf(`{"allowed_domains":"shop.example.com","ultracart":{"webhook_username":"uc","webhook_password":"pw-123"},
 "forward_since":"2020-01-01T00:00:00Z","iterable":{"enabled":true,"api_key":%q,"base_url":%q,"email_list_ids":"501",
 "review_url_template":%q}}`, iterableE2EKey, fake.URL, template))
	putAccount(t, data, "dry", `{"ultracart":{"webhook_username":"uc","webhook_password":"pw-123"},
 "forward_since":"2020-01-01T00:00:00Z","iterable":{"enabled":true}}`)
	s := startServe(t, data)
	base := "http://" + s.addr

	mustPost := func(path, body string) {
		t.Helper()
		if code := post(t, base+path, body); code != http.StatusOK {
			t.Fatalf("POST %s answered %d", path, code)
		}
	}
	state := func() string {
		var b strings.Builder
		for _, c := range fake.Calls() {
			fmt.Fprintf(&b, "%s %d %s\n", c.Path, c.Status, c.Body)
		}
		return b.String()
	}

	mustPost("/webhooks/ultracart/acme", ucOrder("IT-1", "Ann@Example.com", "100.00", "0.00"))
	eventually(t, 30*time.Second, "the purchase and the profile reach Iterable", func() (bool, string) {
		p := fake.Purchases()
		u := fake.User("ann@example.com")
		return len(p) == 1 && p[0].ID == "ultracart:IT-1" && p[0].Total == "100.00" && u != nil && u["purchaseCount"] != nil, state()
	})

	mustPost("/webhooks/ultracart/acme", ucOrder("IT-1", "Ann@Example.com", "100.00", "40.00"))
	eventually(t, 30*time.Second, "the partial refund event", func() (bool, string) {
		evs := fake.Events(iterable.EventOrderRefunded)
		return len(evs) == 1 && evs[0].Fields["refundType"] == "partial" && fmt.Sprint(evs[0].Fields["amount"]) == "40.00", state()
	})
	if n := len(fake.Purchases()); n != 1 {
		t.Fatalf("the refund re-tracked the purchase: %d purchases", n)
	}

	// The same customer profile reports a new email, then the customer orders again.
	mustPost("/webhooks/ultracart/acme", ucCustomer(777, "ann@example.com"))
	eventually(t, 30*time.Second, "the customer profile is recorded", func() (bool, string) {
		u := fake.User("ann@example.com")
		return u != nil && u["lastName"] == "Lee", state()
	})
	mustPost("/webhooks/ultracart/acme", ucCustomer(777, "ann.new@example.com"))
	// Separate deliveries have no order between them (UltraCart sends them independently, and
	// ingest runs them concurrently), so the order is posted once cartrelay has recorded the
	// email change; from then on the contact's facts reach Iterable in order.
	eventually(t, 30*time.Second, "the email change is ingested", func() (bool, string) {
		out, code := runCLI(t, data, "contacts", "get", "acme", "ann.new@example.com")
		return code == 0 && strings.Contains(out, `"previous_emails"`) && strings.Contains(out, "ann@example.com"), out
	})
	mustPost("/webhooks/ultracart/acme", ucOrder("IT-2", "ann.new@example.com", "25.00", "0.00"))
	eventually(t, 30*time.Second, "the email change, then the purchase on the moved profile", func() (bool, string) {
		var seq []string
		for _, c := range fake.Calls() {
			if c.Status == 200 && (c.Path == iterable.PathUsersUpdateEmail || strings.Contains(string(c.Body), "ultracart:IT-2")) {
				seq = append(seq, c.Path)
			}
		}
		ok := len(seq) >= 2 && seq[0] == iterable.PathUsersUpdateEmail && fake.User("ann@example.com") == nil
		for _, p := range fake.Purchases() {
			if p.ID == "ultracart:IT-2" && p.Email != "ann.new@example.com" {
				ok = false
			}
		}
		return ok, strings.Join(seq, " ") + "\n" + state()
	})

	mustPost("/webhooks/ultracart/acme", ucCartAbandon)
	eventually(t, 30*time.Second, "the abandoned cart is on the profile", func() (bool, string) {
		return len(fake.Cart("ava@example.com")) == 1, state()
	})
	if errs := fake.SpecErrors(); len(errs) > 0 {
		t.Fatalf("requests that do not match Iterable's spec:\n%s", strings.Join(errs, "\n"))
	}
	if len(fake.ListMembers(501)) == 0 && len(fake.CallsTo(iterable.PathListsSubscribe)) > 0 {
		t.Fatalf("list subscribe calls did not add members: %s", state())
	}

	// Review links: a genuine one redirects to the merchant's page, a forged one gets a page.
	// The account's review key is read from the data directory serve runs on, as only
	// cartrelay can.
	local, err := operator.Embedded(context.Background(), data, wiring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := local.Keys.Ensure(context.Background(), "acme", accountkeys.Review)
	local.Close()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := reviews.Sign(reviews.SigningKey(key), reviews.Claims{Account: "acme", OrderID: "IT-1", SKU: "SKU-1", Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(base + "/review/" + tok)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://shop.example.com/reviews/new?sku=SKU-1&verified_buyer=true" {
		t.Fatalf("review link: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = noFollow.Get(base + "/review/" + tok[:len(tok)-4] + "AAAA")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("forged review link: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// The account without a key runs dry: the exact request is in the delivery log, unsent.
	calls := len(fake.Calls())
	mustPost("/webhooks/ultracart/dry", ucOrder("DRY-1", "dee@example.com", "12.00", "0.00"))
	eventually(t, 30*time.Second, "the dry run records the purchase request", func() (bool, string) {
		out, code := runCLI(t, data, "deliveries", "list", "dry")
		if code != 0 {
			return false, out
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var d struct {
				Destination string `json:"destination"`
				Status      string `json:"status"`
				Requests    []struct {
					URL            string            `json:"url"`
					RequestHeaders map[string]string `json:"request_headers"`
					RequestBody    string            `json:"request_body"`
				} `json:"requests"`
			}
			if json.Unmarshal([]byte(line), &d) != nil || d.Destination != "iterable" || d.Status != "dry_run" {
				continue
			}
			for _, r := range d.Requests {
				if r.URL == "https://api.iterable.com/api/commerce/trackPurchase" && strings.Contains(r.RequestBody, `"id":"ultracart:DRY-1"`) &&
					r.RequestHeaders["Api-Key"] == "[redacted]" {
					return true, out
				}
			}
		}
		return false, out
	})
	if len(fake.Calls()) != calls {
		t.Fatal("the dry run called Iterable")
	}
}
