package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
)

// How much of a contact's log the short form shows; --full shows everything.
const (
	shortFacts    = 10
	shortFailures = 5
)

// writeContactShort prints what a person looks up a contact for: who it is, what it is worth,
// its orders and subscriptions, the latest facts and the failed deliveries. The full record (every
// order line, request and response) is for --full and for scripts.
func writeContactShort(w io.Writer, account string, v *history.ContactView, full string) error {
	p := v.Profile
	if p == nil {
		p = &domain.Contact{Email: v.Orders[0].Email}
	}
	name := strings.TrimSpace(p.FirstName + " " + p.LastName)
	if name != "" {
		fmt.Fprintf(w, "%s <%s> in account %s\n", name, p.Email, account)
	} else {
		fmt.Fprintf(w, "%s in account %s\n", p.Email, account)
	}
	var about []string
	if p.Phone != "" {
		about = append(about, "phone "+p.Phone)
	}
	if place := joinNonEmpty(", ", p.Address.City, p.Address.Region, p.Address.CountryCode); place != "" {
		about = append(about, place)
	}
	about = append(about, "email opt-in "+optIn(p.EmailOptIn), "SMS opt-in "+optIn(p.SMSOptIn))
	if len(p.PreviousEmails) > 0 {
		about = append(about, "previously "+strings.Join(p.PreviousEmails, ", "))
	}
	fmt.Fprintf(w, "  %s\n", strings.Join(about, " · "))
	totals := fmt.Sprintf("lifetime value %s (gross %s, refunded %s", money(p.LTV), p.GrossRevenue.Decimal(), p.Refunded.Decimal())
	if !p.ChargedBack.IsZero() {
		totals += ", charged back " + p.ChargedBack.Decimal()
	}
	totals += fmt.Sprintf(") · %d purchases · average order %s", p.PurchaseCount, p.AOV.Decimal())
	if !p.FirstPurchaseAt.IsZero() {
		totals += " · first " + day(p.FirstPurchaseAt) + ", last " + day(p.LastPurchaseAt)
	}
	fmt.Fprintf(w, "  %s\n", totals)

	orders := slices.Clone(v.Orders)
	slices.SortFunc(orders, func(a, b domain.Order) int { return orderTime(b).Compare(orderTime(a)) })
	fmt.Fprintf(w, "\nOrders (%d)\n", len(orders))
	table(w, []string{"ORDER", "SOURCE", "STATUS", "PAID", "TOTAL", "REFUNDED", "ITEMS"}, len(orders), func(i int) []string {
		o := orders[i]
		test := ""
		if o.Test {
			test = " (test)"
		}
		return []string{o.OrderID, string(o.Source), string(o.Status) + test, when(o.PaidAt), money(o.Total), o.Refunded.Decimal(), fmt.Sprint(len(o.Items))}
	})
	if len(v.Subscriptions) > 0 {
		fmt.Fprintf(w, "\nSubscriptions (%d)\n", len(v.Subscriptions))
		table(w, []string{"ID", "SOURCE", "STATUS", "SINCE", "AMOUNT", "NEXT"}, len(v.Subscriptions), func(i int) []string {
			s := v.Subscriptions[i]
			return []string{s.ID, string(s.Source), string(s.Status), when(s.StatusAt), money(s.Amount), when(s.NextAttempt)}
		})
	}

	facts := slices.Clone(v.Facts)
	slices.SortFunc(facts, func(a, b domain.Fact) int { return b.OccurredAt.Compare(a.OccurredAt) })
	fmt.Fprintf(w, "\nFacts (%s)\n", latestOf(len(facts), shortFacts))
	facts = facts[:min(len(facts), shortFacts)]
	table(w, []string{"OCCURRED", "KIND", "ORDER", "FACT ID"}, len(facts), func(i int) []string {
		f := facts[i]
		order := ""
		if f.Order != nil {
			order = f.Order.OrderID
		}
		return []string{when(f.OccurredAt), string(f.Kind), order, f.ID}
	})

	var deliveries, failures []history.Delivery
	count := map[string]int{}
	for _, raw := range v.Deliveries {
		var d history.Delivery
		if json.Unmarshal(raw, &d) != nil {
			continue
		}
		deliveries = append(deliveries, d)
		count[d.Status]++
		if d.Status == history.DeliveryParked || d.Status == history.DeliveryRetry {
			failures = append(failures, d)
		}
	}
	var counts []string
	for _, s := range []string{history.DeliverySent, history.DeliveryDryRun, history.DeliverySkipped, history.DeliveryRetry, history.DeliveryParked} {
		if count[s] > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", count[s], strings.ReplaceAll(s, "_", " ")))
		}
	}
	fmt.Fprintf(w, "\nDeliveries: %d", len(deliveries))
	if len(counts) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(counts, ", "))
	}
	fmt.Fprintln(w)
	if len(failures) > 0 {
		slices.SortFunc(failures, func(a, b history.Delivery) int { return b.At.Compare(a.At) })
		fmt.Fprintf(w, "\nFailed deliveries (%s)\n", latestOf(len(failures), shortFailures))
		failures = failures[:min(len(failures), shortFailures)]
		table(w, []string{"AT", "DESTINATION", "FACT", "STATUS", "ERROR"}, len(failures), func(i int) []string {
			d := failures[i]
			return []string{when(d.At), d.Dest, d.FactKind, d.Status, d.Error}
		})
	}
	_, err := fmt.Fprintf(w, "\nThe whole record, with every request and response: %s\n", full)
	return err
}

// table prints n rows under heads, aligned.
func table(w io.Writer, heads []string, n int, row func(int) []string) {
	if n == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  "+strings.Join(heads, "\t"))
	for i := range n {
		cells := row(i)
		for j := range cells {
			cells[j] = oneLine(cells[j])
		}
		fmt.Fprintln(tw, "  "+strings.Join(cells, "\t"))
	}
	_ = tw.Flush()
}

func latestOf(n, shown int) string {
	if n > shown {
		return fmt.Sprintf("latest %d of %d", shown, n)
	}
	return fmt.Sprint(n)
}

func orderTime(o domain.Order) time.Time {
	if !o.PaidAt.IsZero() {
		return o.PaidAt
	}
	return o.CreatedAt
}

func money(m domain.Money) string {
	if m.Currency == "" {
		return m.Decimal()
	}
	return m.Decimal() + " " + m.Currency
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

func optIn(b *bool) string {
	switch {
	case b == nil:
		return "unknown"
	case *b:
		return "yes"
	}
	return "no"
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
