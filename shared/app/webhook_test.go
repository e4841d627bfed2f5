package app_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/queue"
)

func TestUltraCartWebhookRefusals(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	h.account("other", `,"ultracart":{"webhook_username":"someone","webhook_password":"else-pass"}`)
	order := fixture(t, "ultracart", "order_create.json")
	for _, tc := range []struct {
		name       string
		path       string
		headers    map[string]string
		body       []byte
		want       int
		wantChalln bool
		wantInBody string
	}{
		{"no credentials", "/webhooks/ultracart/acme", nil, order, 401, true, "credentials"},
		{"wrong password", "/webhooks/ultracart/acme", basic(ucUser, "nope"), order, 401, true, "credentials"},
		{"unknown account answers like a wrong password", "/webhooks/ultracart/ghost", basic(ucUser, ucPass), order, 401, true, "credentials"},
		{"another account's credentials", "/webhooks/ultracart/other", basic(ucUser, ucPass), order, 401, true, "credentials"},
		{"malformed JSON", "/webhooks/ultracart/acme", basic(ucUser, ucPass), []byte(`{"events":[{"order_create":`), 400, false, ""},
		{"not an event list", "/webhooks/ultracart/acme", basic(ucUser, ucPass), []byte(`"hello"`), 400, false, ""},
		{"empty body", "/webhooks/ultracart/acme", basic(ucUser, ucPass), nil, 400, false, "empty"},
		{"over the size cap", "/webhooks/ultracart/acme", basic(ucUser, ucPass), bytes.Repeat([]byte(" "), 7<<20), 413, false, "limit"},
		{"compressed past what UltraCart sends", "/webhooks/ultracart/acme", basic(ucUser, ucPass), gzipBomb(t, 7<<20), 413, false, "maximum_size"},
		{"unknown source", "/webhooks/shopify/acme", basic(ucUser, ucPass), order, 404, false, "ultracart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := h.env.App.Webhook(context.Background(), httpReq("POST", tc.path, "application/json", tc.body, tc.headers))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, resp.Body)
			}
			if got := resp.Headers["www-authenticate"] != ""; got != tc.wantChalln {
				t.Errorf("WWW-Authenticate present = %v, want %v", got, tc.wantChalln)
			}
			var msg struct{ Error string }
			if json.Unmarshal([]byte(resp.Body), &msg) != nil || msg.Error == "" {
				t.Errorf("answer %q has no error message", resp.Body)
			}
			if !strings.Contains(msg.Error, tc.wantInBody) {
				t.Errorf("message %q does not mention %q", msg.Error, tc.wantInBody)
			}
			if n := h.queued(queue.Ingest); n != 0 {
				t.Fatalf("%d event(s) queued for a refused delivery", n)
			}
		})
	}
}

// gzipBomb is a compressed UltraCart delivery of a few KB whose events inflate to n bytes.
func gzipBomb(t *testing.T, n int) []byte {
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write([]byte(`[{"order_create":{"order_id":"DEMO-1"}}`))
	zw.Write(bytes.Repeat([]byte(" "), n))
	zw.Write([]byte(`]`))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"events": base64.StdEncoding.EncodeToString(gz.Bytes())})
	return body
}

func TestUltraCartEnvelopesAndCompression(t *testing.T) {
	plain := fixture(t, "ultracart", "order_create.json")
	var env struct{ Events []json.RawMessage }
	if err := json.Unmarshal(plain, &env); err != nil {
		t.Fatal(err)
	}
	bare, _ := json.Marshal(env.Events)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bare)
	zw.Close()
	compressed, _ := json.Marshal(map[string]string{"events": base64.StdEncoding.EncodeToString(gz.Bytes())})
	for name, body := range map[string][]byte{"events object": plain, "bare array": bare, "gzip+base64": compressed} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.account("acme", "")
			if resp := h.postUC("acme", body); resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
			}
			h.drainIngest()
			if got := len(h.facts(iterableQueue, domain.FactOrderPlaced)); got != 1 {
				t.Fatalf("%d OrderPlaced facts, want 1", got)
			}
			v := h.contact("acme", "marcus.reyes@example.com")
			if v.Profile == nil || v.Profile.PurchaseCount != 1 || v.Profile.LTV.Decimal() != "59.98" {
				t.Fatalf("profile after one order: %+v", v.Profile)
			}
		})
	}
}

func TestBadAndUnknownEventsAreQuarantinedNotLost(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	resp := h.postUC("acme", fixture(t, "ultracart", "mixed_delivery.json"))
	if resp.StatusCode != 200 {
		t.Fatalf("a delivery with one bad event answered %d: %s", resp.StatusCode, resp.Body)
	}
	h.drainIngest()
	q := h.quarantined("acme")
	kinds := map[string]int{}
	for _, x := range q {
		kinds[x.Kind]++
		if x.Reason == "" || x.Message == "" {
			t.Errorf("quarantined event without reason or message: %+v", x)
		}
	}
	if kinds["malformed"] == 0 || kinds["unknown_event"] == 0 {
		t.Fatalf("quarantine kinds %v; want malformed and unknown_event", kinds)
	}
	if got := len(h.facts(ontraportQueue, domain.FactOrderPlaced)); got == 0 {
		t.Fatal("the good events of the delivery were not ingested")
	}
}

func TestRefundsAndDuplicatesCountOnce(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	create := fixture(t, "ultracart", "order_create.json")
	partial := fixture(t, "ultracart", "order_refund_partial.json")
	full := fixture(t, "ultracart", "order_refund_full.json")
	// Out of order, with retries: the full refund first, then the older events twice.
	for _, b := range [][]byte{create, full, partial, create, partial, full} {
		if resp := h.postUC("acme", b); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		h.drainIngest()
	}
	for _, dest := range []string{ontraportQueue, iterableQueue} {
		if n := len(h.facts(dest, domain.FactOrderPlaced)); n != 1 {
			t.Errorf("%s got %d OrderPlaced, want 1", dest, n)
		}
		refunds := h.facts(dest, domain.FactOrderRefunded)
		var sum int64
		ids := map[string]bool{}
		for _, f := range refunds {
			sum += f.Refund.Delta.Minor
			if ids[f.ID] {
				t.Errorf("%s got refund fact %s twice", dest, f.ID)
			}
			ids[f.ID] = true
		}
		if sum != 5998 {
			t.Errorf("%s refund deltas sum to %d cents, want 5998", dest, sum)
		}
	}
	v := h.contact("acme", "marcus.reyes@example.com")
	if v.Profile.LTV.Minor != 0 || v.Profile.Refunded.Decimal() != "59.98" || v.Profile.PurchaseCount != 1 {
		t.Fatalf("after a full refund: ltv %s refunded %s count %d", v.Profile.LTV, v.Profile.Refunded, v.Profile.PurchaseCount)
	}
	if len(v.Orders) != 1 || v.Orders[0].Refunded.Decimal() != "59.98" {
		t.Fatalf("stored orders %+v", v.Orders)
	}
}

func TestTestOrdersAreStoredButNotCountedOrForwarded(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	h.postUC("acme", fixture(t, "ultracart", "order_test.json"))
	h.drainIngest()
	if n := len(h.facts(iterableQueue, domain.FactOrderPlaced)); n != 0 {
		t.Fatalf("a test order produced %d OrderPlaced", n)
	}
	var o struct {
		Events []map[string]struct{ Billing struct{ Email string } }
	}
	json.Unmarshal(fixture(t, "ultracart", "order_test.json"), &o)
	email := ""
	for _, ev := range o.Events {
		for _, x := range ev {
			email, _ = domain.NormalizeEmail(x.Billing.Email)
		}
	}
	v := h.contact("acme", email)
	if len(v.Orders) != 1 || !v.Orders[0].Test {
		t.Fatalf("test order not stored as test: %+v", v.Orders)
	}
	if v.Profile != nil && v.Profile.PurchaseCount != 0 {
		t.Fatalf("test order counted: %+v", v.Profile)
	}
}

func TestEmailChangeMovesHistory(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	h.postUC("acme", fixture(t, "ultracart", "order_create.json"))
	h.drainIngest()
	h.postUC("acme", fixture(t, "ultracart", "customer_update.json"))
	h.drainIngest()
	changed := h.facts(iterableQueue, domain.FactEmailChanged)
	if len(changed) != 1 || changed[0].OldEmail != "marcus.reyes@example.com" || changed[0].Email != "marcus@reyes-design.example.com" {
		t.Fatalf("EmailChanged facts: %+v", changed)
	}
	nw := h.contact("acme", "marcus@reyes-design.example.com")
	if nw.Profile == nil || nw.Profile.PurchaseCount != 1 || len(nw.Orders) != 1 {
		t.Fatalf("new contact does not carry the history: %+v", nw.Profile)
	}
	old := h.contact("acme", "marcus.reyes@example.com")
	if old.AliasOf != "marcus@reyes-design.example.com" || len(old.Orders) != 0 {
		t.Fatalf("old email should be an alias with no orders: alias %q, %d orders", old.AliasOf, len(old.Orders))
	}
	// A refund arriving under the old email counts under the new one.
	h.postUC("acme", fixture(t, "ultracart", "order_refund_partial.json"))
	h.drainIngest()
	nw = h.contact("acme", "marcus@reyes-design.example.com")
	if nw.Profile.Refunded.Decimal() != "20.00" {
		t.Fatalf("refund after the change: refunded %s, want 20.00", nw.Profile.Refunded)
	}
}

func TestAccountsAreIsolated(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	h.account("globex", "")
	h.postUC("acme", fixture(t, "ultracart", "order_create.json"))
	h.drainIngest()
	if v := h.contact("globex", "marcus.reyes@example.com"); v.Profile != nil || len(v.Orders) != 0 {
		t.Fatal("an order posted to acme shows up in globex")
	}
	for _, f := range h.sent[ontraportQueue] {
		if f.Account != "acme" || !strings.HasPrefix(f.ID, "acme:") {
			t.Fatalf("fact %s of account %s", f.ID, f.Account)
		}
	}
}

func TestHistoricalEventsOnlyRefreshProfiles(t *testing.T) {
	h := newHarness(t)
	// The fixture's order is from 2024; the account starts forwarding in 2025.
	h.account("acme", `,"forward_since":"2025-01-01T00:00:00Z","iterable":{"enabled":true,"history":"all"}`)
	h.postUC("acme", fixture(t, "ultracart", "order_create.json"))
	h.drainIngest()
	if n := len(h.facts(ontraportQueue, domain.FactOrderPlaced)); n != 0 {
		t.Fatalf("ontraport (history: profiles) got %d historical OrderPlaced", n)
	}
	if n := len(h.facts(ontraportQueue, domain.FactContactChanged)); n == 0 {
		t.Fatal("ontraport did not get the profile refresh")
	}
	if n := len(h.facts(iterableQueue, domain.FactOrderPlaced)); n != 1 {
		t.Fatalf("iterable (history: all) got %d OrderPlaced, want 1", n)
	}
	if v := h.contact("acme", "marcus.reyes@example.com"); v.Profile == nil || v.Profile.PurchaseCount != 1 {
		t.Fatal("a historical order must still be stored and counted")
	}
}

func TestThriveCartWebhook(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	form := fixture(t, "thrivecart", "order_success.form")
	head, _ := h.env.App.Webhook(context.Background(), httpReq("HEAD", "/webhooks/thrivecart/acme", "", nil, nil))
	if head.StatusCode != 200 {
		t.Fatalf("HEAD answered %d; ThriveCart checks the URL with HEAD", head.StatusCode)
	}
	bad := strings.Replace(string(form), "thrivecart_secret=", "thrivecart_secret=x", 1)
	resp, _ := h.env.App.Webhook(context.Background(), httpReq("POST", "/webhooks/thrivecart/acme", "application/x-www-form-urlencoded", []byte(bad), nil))
	if resp.StatusCode != 401 || h.queued(queue.Ingest) != 0 {
		t.Fatalf("wrong secret word: status %d, queued %d", resp.StatusCode, h.queued(queue.Ingest))
	}
	resp, _ = h.env.App.Webhook(context.Background(), httpReq("POST", "/webhooks/thrivecart/acme", "application/x-www-form-urlencoded", form, nil))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
	}
	h.drainIngest()
	placed := h.facts(iterableQueue, domain.FactOrderPlaced)
	if len(placed) != 1 || placed[0].Order.Source != domain.ThriveCart || placed[0].Order.Total.Minor <= 0 {
		t.Fatalf("OrderPlaced from ThriveCart: %+v", placed)
	}
	// The secret word never travels past the webhook.
	for _, q := range h.quarantined("acme") {
		if strings.Contains(q.Message, tcSecret) {
			t.Fatal("the secret word was stored")
		}
	}
}

// TestThriveCartWebhookAuthenticatesFirst: every ThriveCart request that does not carry the
// account's secret word gets one and the same answer, whatever else is wrong with it, so the
// answers tell nothing about which accounts exist or how far the body was read; only a body
// with the secret word is decoded, and only then does a malformed one get a 400 saying why.
func TestThriveCartWebhookAuthenticatesFirst(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	form := string(fixture(t, "thrivecart", "order_success.form"))
	wrong := strings.Replace(form, "thrivecart_secret="+tcSecret, "thrivecart_secret=guess", 1)
	noEvent := strings.Replace(form, "event=order.success&", "", 1)
	// More fields than a ThriveCart body may have: decoding it would fail with a 400.
	tooMany := "thrivecart_secret=guess&event=order.success&" + strings.Repeat("a[]=1&", 20_000)
	const formType = "application/x-www-form-urlencoded"
	post := func(account, ctype, body string, base64Garbage bool) events.APIGatewayV2HTTPResponse {
		req := httpReq("POST", "/webhooks/thrivecart/"+account, ctype, []byte(body), nil)
		if base64Garbage {
			req.Body, req.IsBase64Encoded = "%%% not base64", true
		}
		resp, err := h.env.App.Webhook(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	refused := []struct {
		name, account, ctype, body string
		base64Garbage              bool
	}{
		{"unknown account, right body", "ghost", formType, form, false},
		{"unknown account, body without event", "ghost", formType, noEvent, false},
		{"unknown account, huge body", "ghost", formType, tooMany, false},
		{"wrong secret", "acme", formType, wrong, false},
		{"no secret", "acme", formType, strings.Replace(form, "thrivecart_secret=", "x=", 1), false},
		{"wrong secret, no event", "acme", formType, strings.Replace(noEvent, tcSecret, "guess", 1), false},
		{"wrong secret, over the field limit", "acme", formType, tooMany, false},
		{"empty body", "acme", formType, "", false},
		{"invalid JSON", "acme", "application/json", `{"event":"order.success","thrivecart_secret":"` + tcSecret + `",`, false},
		{"JSON array", "acme", "application/json", `[{"event":"order.success"}]`, false},
		{"not base64", "acme", formType, form, true},
		{"over the size cap", "acme", formType, form + "&pad=" + strings.Repeat("x", 5<<20), false},
	}
	first := post(refused[0].account, refused[0].ctype, refused[0].body, false)
	if first.StatusCode != http.StatusUnauthorized || !strings.Contains(first.Body, "secret word") {
		t.Fatalf("unknown account: %d %s", first.StatusCode, first.Body)
	}
	for _, tc := range refused {
		resp := post(tc.account, tc.ctype, tc.body, tc.base64Garbage)
		if resp.StatusCode != first.StatusCode || resp.Body != first.Body || !reflect.DeepEqual(resp.Headers, first.Headers) {
			t.Errorf("%s: %d %s %v; want the same answer as for an unknown account", tc.name, resp.StatusCode, resp.Body, resp.Headers)
		}
	}
	if n := h.queued(queue.Ingest); n != 0 {
		t.Fatalf("%d event(s) queued for refused requests", n)
	}
	// Authenticated, the sender learns what is wrong with its body.
	for _, tc := range []struct{ name, body, want string }{
		{"no event", noEvent, `no "event" field`},
		{"over the field limit", strings.Replace(tooMany, "guess", tcSecret, 1), "more than 10000 fields"},
	} {
		resp := post("acme", formType, tc.body, false)
		var msg struct{ Error string }
		_ = json.Unmarshal([]byte(resp.Body), &msg)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg.Error, tc.want) {
			t.Errorf("%s with the right secret word: %d %s, want 400 saying %q", tc.name, resp.StatusCode, resp.Body, tc.want)
		}
	}
	if resp := post("acme", formType, form, false); resp.StatusCode != http.StatusOK || h.queued(queue.Ingest) != 1 {
		t.Fatalf("the right secret word: %d %s, %d queued", resp.StatusCode, resp.Body, h.queued(queue.Ingest))
	}
}

func TestUnusableSettingsAreRefusedAtPut(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ patch, want string }{
		{`{"ultracart":{"base_currency":"usd"}}`, "ultracart.base_currency"},
		{`{"ultracart":{"base_currency":"XYZ"}}`, "not an ISO 4217 currency"},
		{`{"iterable":{"review_wait":"soon"}}`, "iterable.review_wait"},
		{`{"iterable":{"review_after":"arrival"}}`, "iterable.review_after"},
		{`{"ontraport":{"requests_per_minute":"lots"}}`, "requests_per_minute"},
	} {
		_, err := h.env.Accounts.Put(context.Background(), "acme", []byte(tc.patch))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("put %s: error %v, want one naming %s", tc.patch, err, tc.want)
		}
	}
}

// TestOrderInAnUnknownCurrencyIsQuarantined: an order whose currency is not an ISO 4217 code
// cannot be counted; it is kept raw with a reason that names the field, and nothing is sent.
func TestOrderInAnUnknownCurrencyIsQuarantined(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	body := strings.ReplaceAll(string(fixture(t, "ultracart", "order_create.json")), `"USD"`, `"XYZ"`)
	if resp := h.postUC("acme", []byte(body)); resp.StatusCode != 200 {
		t.Fatalf("webhook answered %d", resp.StatusCode)
	}
	h.drainIngest()
	q := h.quarantined("acme")
	if len(q) != 1 || q[0].Kind != history.QuarantineInvalid ||
		!strings.Contains(q[0].Reason, `currency_code is "XYZ", which is not an ISO 4217 currency code`) {
		t.Fatalf("quarantined %+v", q)
	}
	if n := len(h.facts(iterableQueue, domain.FactOrderPlaced)); n != 0 {
		t.Fatalf("%d OrderPlaced for an order in an unknown currency", n)
	}
}
