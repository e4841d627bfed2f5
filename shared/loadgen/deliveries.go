// Package loadgen drives a real `cartrelay serve` process the way a busy store would: UltraCart
// order deliveries of about 5 KB, each a new order, posted at a fixed rate. It measures what a
// merchant would feel (how many deliveries were accepted, how long each answer took) and what
// happens behind the webhook (how long until an order is ingested and until both destinations
// have it), and the process's peak memory. `make bench-load` runs it; the crash test
// (TestCrashUnderLoad) uses the same process handling and sender.
package loadgen

import (
	_ "embed"
	"fmt"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// orderTemplate is an UltraCart order_create delivery as UltraCart posts it (4.9 KB: two items,
// billing and shipping addresses, a coupon, tax and shipping), with placeholders for what makes
// each order distinct.
//
//go:embed order.json
var orderTemplate string

// Account is the account the load is posted to, and its webhook credentials.
const (
	Account         = "load"
	WebhookUser     = "load-user"
	WebhookPassword = "load-password-0123456789"
)

// Delivery is the body of UltraCart's delivery of one new order: orderID paid at at by email.
func Delivery(orderID, email string, at time.Time) []byte {
	ts := at.UTC().Format(time.RFC3339)
	return []byte(strings.NewReplacer("{{ORDER}}", orderID, "{{EMAIL}}", email,
		"{{CREATED}}", ts, "{{PAID}}", ts).Replace(orderTemplate))
}

// OrderID is the id of the n-th order of a run; run keeps runs against one data directory
// apart.
func OrderID(run string, n uint64) string { return fmt.Sprintf("LOAD-%s-%07d", run, n) }

// Email is the buyer of the n-th order: every order a new customer, as in a launch.
func Email(run string, n uint64) string {
	return fmt.Sprintf("buyer-%s-%d@load.example.com", strings.ToLower(run), n)
}

// OrderKey is the stored order's key.
func OrderKey(orderID string) string { return domain.OrderKey(domain.UltraCart, orderID, "") }
