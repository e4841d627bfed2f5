package synth

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Event is one UltraCart webhook event of a history: its name, its payload (the object under the
// name in a delivery's "events" list) and when UltraCart sent it.
type Event struct {
	At      time.Time
	Name    string
	Payload json.RawMessage
	// Customer is the index of the customer it concerns, for tests that reorder per customer.
	Customer int
}

// Delivery wraps events into one UltraCart webhook body.
func Delivery(evs []Event) []byte {
	list := make([]map[string]json.RawMessage, len(evs))
	for i, e := range evs {
		list[i] = map[string]json.RawMessage{e.Name: e.Payload}
	}
	b, _ := json.Marshal(map[string]any{"events": list})
	return b
}

// Events tells the history as UltraCart webhook events, in the order they were sent.
func (h *History) Events() []Event {
	var out []Event
	for ci, c := range h.Customers {
		add := func(at time.Time, name string, payload any) {
			b, err := json.Marshal(payload)
			if err != nil {
				panic(err) // maps of plain values
			}
			out = append(out, Event{At: at.UTC(), Name: name, Payload: b, Customer: ci})
		}
		byID := map[string]*Order{}
		for _, o := range c.Orders {
			byID[o.ID] = o
		}
		for _, o := range c.Orders {
			add(o.Created, "order_create", orderPayload(c, o, 0, time.Time{}))
			var cum int64
			for _, r := range o.Refunds {
				cum += r.Amount
				add(r.At, "order_refund", orderPayload(c, o, cum, r.At))
			}
			if d := o.Dispute; d != nil {
				cb := map[string]any{"chargeback_dispute_oid": d.ID, "order_id": o.ID, "amount": json.Number(strconv.FormatFloat(float64(d.Amount)/100, 'f', 2, 64)),
					"currency": "USD", "status": "Pending", "chargeback_dts": ts(d.At), "reason_code": "10.4 Other Fraud",
					"order": orderPayload(c, o, 0, time.Time{})}
				add(d.At, "chargeback_create", cb)
				if d.Outcome != "" && d.Decided.Before(h.End) {
					up := map[string]any{}
					for k, v := range cb {
						up[k] = v
					}
					up["status"] = d.Outcome
					add(d.Decided, "chargeback_update", up)
				}
			}
			switch {
			case o.Rejected:
				p := orderPayload(c, o, 0, time.Time{})
				p["current_stage"] = "Rejected"
				p["reject_dts"] = ts(o.Created.Add(time.Hour))
				add(o.Created.Add(time.Hour), "order_reject", p)
			case o.Deleted:
				add(o.Created.Add(48*time.Hour), "order_delete", orderPayload(c, o, 0, time.Time{}))
			}
		}
		for _, s := range c.Subs {
			orig := byID[s.Original]
			add(s.Start, "auto_order_create", autoOrderPayload(c, s, orig, "active", false, time.Time{}))
			for _, p := range s.Pauses {
				add(p[0], "auto_order_update", autoOrderPayload(c, s, orig, "active", true, time.Time{}))
				if p[1].Before(h.End) && (s.Cancel.IsZero() || p[1].Before(s.Cancel)) {
					add(p[1], "auto_order_update", autoOrderPayload(c, s, orig, "active", false, time.Time{}))
				}
			}
			if !s.Cancel.IsZero() {
				status := "canceled"
				if s.Upgraded {
					status = "merged"
				}
				add(s.Cancel, "auto_order_cancel", autoOrderPayload(c, s, orig, status, false, s.Cancel))
			}
		}
		if c.NewEmail != "" {
			add(c.ChangedAt, "customer_update", map[string]any{"customer_profile_oid": c.Profile, "merchant_id": "SYNTH",
				"email": c.NewEmail, "last_modified_dts": ts(c.ChangedAt)})
		}
	}
	slices.SortStableFunc(out, func(a, b Event) int { return a.At.Compare(b.At) })
	return out
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func money(cents int64) map[string]any {
	return map[string]any{"value": json.Number(strconv.FormatFloat(float64(cents)/100, 'f', 2, 64)), "currency_code": "USD"}
}

// orderPayload is UltraCart's Order for o; refunded > 0 makes it the order after a refund.
func orderPayload(c *Customer, o *Order, refunded int64, refundedAt time.Time) map[string]any {
	first, last := names(c.Profile)
	full := refunded > 0 && refunded >= o.Total()
	var items []map[string]any
	var subtotal int64
	for _, l := range o.Lines {
		it := map[string]any{"merchant_item_id": l.SKU, "description": l.Name, "quantity": l.Qty,
			"cost": money(l.Unit), "total_cost_with_discount": money(l.Qty * l.Unit)}
		if full {
			it["total_refunded"] = money(l.Qty * l.Unit)
			it["quantity_refunded"] = l.Qty
		}
		subtotal += l.Qty * l.Unit
		items = append(items, it)
	}
	p := map[string]any{
		"order_id": o.ID, "merchant_id": "SYNTH", "creation_dts": ts(o.Created), "current_stage": "Completed Order",
		"currency_code": "USD", "exchange_rate": 1,
		"billing": map[string]any{"email": o.Email, "first_name": first, "last_name": last, "country_code": "US"},
		"items":   items,
		"summary": map[string]any{"subtotal": money(subtotal), "tax": money(o.Tax), "shipping_handling_total": money(o.Shipping),
			"total": money(o.Total()), "total_refunded": money(refunded)},
		"payment":          map[string]any{"payment_dts": ts(o.Paid), "payment_status": "Processed", "test_order": o.Test},
		"customer_profile": map[string]any{"customer_profile_oid": o.Customer, "email": o.Email},
	}
	if refunded > 0 {
		p["refund_dts"] = ts(refundedAt)
	}
	// UltraCart lists the most recent click first.
	var utms []map[string]any
	for i := len(o.Touches) - 1; i >= 0; i-- {
		t := o.Touches[i]
		utms = append(utms, map[string]any{"utm_source": t.Source, "utm_medium": t.Medium, "utm_campaign": t.Campaign, "click_dts": ts(t.At)})
	}
	if len(utms) > 0 {
		p["utms"] = utms
	}
	if o.Sub != "" {
		orig := o.Original
		if orig == "" {
			orig = o.ID
		}
		p["auto_order"] = map[string]any{"auto_order_code": o.Sub, "original_order_id": orig}
	}
	return p
}

func autoOrderPayload(c *Customer, s *Subscription, orig *Order, status string, paused bool, ended time.Time) map[string]any {
	p := map[string]any{
		"merchant_id": "SYNTH", "auto_order_code": s.Code, "original_order_id": s.Original, "status": status, "enabled": status == "active",
		"items": []map[string]any{{"original_item_id": s.Plan.SKU, "frequency": s.Plan.Frequency, "original_quantity": 1, "paused": paused}},
	}
	if orig != nil {
		p["original_order"] = orderPayload(c, orig, 0, time.Time{})
	}
	switch status {
	case "canceled":
		p["canceled_dts"] = ts(ended)
	case "merged":
		p["merged_dts"] = ts(ended)
	}
	return p
}

func names(profile int) (string, string) {
	return firstNames[profile%len(firstNames)], lastNames[(profile/len(firstNames))%len(lastNames)]
}

// String describes an event for test failures.
func (e Event) String() string { return fmt.Sprintf("%s %s", e.At.Format(time.RFC3339), e.Name) }
