package reports

import (
	"encoding/json"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/store"
)

// The refund index lists, per UTC month, the orders refunded on each day, so that a drill-down
// into a period's refunds (the cash view) finds orders paid long before it without reading the
// whole history. It is kept in UTC, so a change of time zone leaves it as it is.

func refundIndexPK(account string, month string) string { return "A#" + account + "#RX#" + month }

type refundRef struct {
	Email string `json:"email"`
}

// refundIndexWrites are the index changes of the contacts a change touches: puts for refund
// days that appear (or whose order moved to another contact), deletes for those that vanish.
func refundIndexWrites(account string, contacts []*history.ContactState) []store.Write {
	entries := func(email string, orders map[string]domain.Order) map[store.Key]string {
		out := map[store.Key]string{}
		for _, o := range orders {
			for _, r := range rollup.CashRefunds(&o) {
				t := r.At.UTC()
				out[store.Key{PK: refundIndexPK(account, t.Format("2006-01")), SK: t.Format(time.DateOnly) + "#" + o.Key}] = email
			}
		}
		return out
	}
	before, after := map[store.Key]string{}, map[store.Key]string{}
	for _, c := range contacts {
		for k, e := range entries(c.Email, c.StoredOrders) {
			before[k] = e
		}
		for k, e := range entries(c.Email, c.Orders) {
			after[k] = e
		}
	}
	var ws []store.Write
	for k, e := range after {
		if before[k] != e {
			data, _ := json.Marshal(refundRef{Email: e})
			ws = append(ws, store.PutItem(store.Item{PK: k.PK, SK: k.SK, Data: data}, store.Always))
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			ws = append(ws, store.DeleteKey(k, store.Always))
		}
	}
	return ws
}
