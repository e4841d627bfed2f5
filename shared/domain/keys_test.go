package domain

import (
	"strings"
	"testing"
	"time"
)

func TestOrderAndSubscriptionKeys(t *testing.T) {
	cases := []struct {
		name string
		got  string
		want string
	}{
		{"ultracart", OrderKey(UltraCart, "DEMO-0009110366", ""), "ultracart:DEMO-0009110366"},
		{"thrivecart original", OrderKey(ThriveCart, "4021", ""), "thrivecart:4021"},
		{"thrivecart rebill", OrderKey(ThriveCart, "4021", "000000004-2"), "thrivecart:4021:000000004-2"},
		{"colon in an id is escaped", OrderKey(ThriveCart, "a:b", ""), "thrivecart:a%3Ab"},
		{"percent is escaped", OrderKey(UltraCart, "50%", ""), "ultracart:50%25"},
		{"subscription", SubscriptionKey(UltraCart, "AO-123"), "ultracart:AO-123"},
		{"subscription space", SubscriptionKey(ThriveCart, "sub 1"), "thrivecart:sub%201"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
	// Escaping keeps keys apart that plain joining would merge.
	if OrderKey(ThriveCart, "a:b", "") == OrderKey(ThriveCart, "a", "b") {
		t.Error("an order id with ':' collides with an order id plus invoice id")
	}
}

func TestFactIDs(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ok := OrderKey(UltraCart, "DEMO-1", "")
	cases := []struct {
		name string
		got  string
		want string
	}{
		{"placed", OrderPlacedID("acct1", ok), "acct1:OrderPlaced:ultracart:DEMO-1"},
		{"refunded", OrderRefundedID("acct1", ok, usd(1299)), "acct1:OrderRefunded:ultracart:DEMO-1:1299USD"},
		{"refunded jpy", OrderRefundedID("acct1", ok, Money{Minor: 500, Currency: "JPY"}), "acct1:OrderRefunded:ultracart:DEMO-1:500JPY"},
		{"shipped", OrderShippedID("acct1", ok, "1Z999AA10123456784"), "acct1:OrderShipped:ultracart:DEMO-1:1Z999AA10123456784"},
		{"shipped with spaces", OrderShippedID("acct1", ok, "9400 1000 0000"), "acct1:OrderShipped:ultracart:DEMO-1:9400%201000%200000"},
		{"shipped untracked", OrderUntrackedShipmentID("acct1", ok), "acct1:OrderShipped:ultracart:DEMO-1:"},
		{"out for delivery", OrderOutForDeliveryID("acct1", ok), "acct1:OrderOutForDelivery:ultracart:DEMO-1"},
		{"delivered", OrderDeliveredID("acct1", ok), "acct1:OrderDelivered:ultracart:DEMO-1"},
		{"charged back", OrderChargedBackID("acct1", ok, usd(2500), "0123abcd"), "acct1:OrderChargedBack:ultracart:DEMO-1:2500USD:0123abcd"},
		{"charged back, restored", OrderChargedBackID("acct1", ok, Money{}, "ff"), "acct1:OrderChargedBack:ultracart:DEMO-1:0:ff"},
		{"reversed", OrderReversedID("acct1", ok), "acct1:OrderReversed:ultracart:DEMO-1"},
		{"subscription", SubscriptionChangedID("acct1", SubscriptionKey(ThriveCart, "77"), SubCancelled, at),
			"acct1:SubscriptionChanged:thrivecart:77:cancelled:1740830400"},
		{"contact", ContactChangedID("acct1", "ann@example.com", "0123abcd"), "acct1:ContactChanged:ann@example.com:0123abcd"},
		{"contact non-ascii email", ContactChangedID("acct1", "zoë@example.com", "ff"), "acct1:ContactChanged:zo%C3%AB@example.com:ff"},
		{"email", EmailChangedID("acct1", "a@x.com", "b@x.com"), "acct1:EmailChanged:a@x.com:b@x.com"},
		{"cart", CartAbandonedID("acct1", UltraCart, "C-9", at), "acct1:CartAbandoned:ultracart:C-9:1740830400"},
		{"item", ItemChangedID("acct1", UltraCart, "SKU:1", "beef"), "acct1:ItemChanged:ultracart:SKU%3A1:beef"},
		{"account with colon", OrderPlacedID("a:b", ok), "a%3Ab:OrderPlaced:ultracart:DEMO-1"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
		checkSQSDedupID(t, c.got)
	}
}

func TestFactIDsStayWithinSQSLimit(t *testing.T) {
	longEmail := strings.Repeat("very.long.name", 10) + "@example.com"
	a := ContactChangedID("acct-with-a-long-name", longEmail, "0123456789abcdef")
	b := ContactChangedID("acct-with-a-long-name", longEmail, "0123456789abcdee")
	if len(a) != MaxFactIDLen || len(b) != MaxFactIDLen {
		t.Fatalf("lengths %d and %d, want %d", len(a), len(b), MaxFactIDLen)
	}
	if a == b {
		t.Fatal("two different long ids were shortened to the same id")
	}
	if a != ContactChangedID("acct-with-a-long-name", longEmail, "0123456789abcdef") {
		t.Fatal("shortening is not deterministic")
	}
	if !strings.HasPrefix(a, "acct-with-a-long-name:ContactChanged:very.long.name") {
		t.Fatalf("lost the readable prefix: %s", a)
	}
	checkSQSDedupID(t, a)
	exact := OrderPlacedID("a", OrderKey(UltraCart, strings.Repeat("x", MaxFactIDLen-len("a:OrderPlaced:ultracart:")), ""))
	if len(exact) != MaxFactIDLen || strings.Contains(exact, "~") {
		t.Fatalf("an id of exactly %d characters must stay as it is: %s", MaxFactIDLen, exact)
	}
}

// checkSQSDedupID holds an id to SQS's rule for MessageDeduplicationId: at most 128 characters
// of alphanumerics and punctuation.
func checkSQSDedupID(t *testing.T, id string) {
	t.Helper()
	if len(id) == 0 || len(id) > MaxFactIDLen {
		t.Errorf("id %q has length %d", id, len(id))
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f {
			t.Errorf("id %q has byte %#x SQS refuses", id, c)
		}
	}
}
