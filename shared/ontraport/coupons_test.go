package ontraport

import (
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
)

// couponOrder is a 100.00 order discounted to 90.00 by the coupons FALL10 and VIP (twice).
func couponOrder(id string) domain.Fact {
	f := orderFact(id, "cat@example.com", []domain.LineItem{lineItem("SKU-1", 1, "100.00")}, "0", "0", "10.00", "90.00")
	f.Order.Coupons = []string{"FALL10", "VIP", "vip"}
	return f
}

// TestCouponCodesOnTheTransaction: the order's coupon codes travel on its transaction as
// zero-priced lines "Coupon <code>", one per code, while the lines still add up to the total.
func TestCouponCodesOnTheTransaction(t *testing.T) {
	e := newEnv(t)
	e.mustDeliver(couponOrder("C-1"))
	txs := e.fake.TransactionsFor("ultracart:C-1")
	if len(txs) != 1 || txs[0].Total != ontraportfake.MustAmount("90.00") {
		t.Fatalf("transactions %+v", txs)
	}
	var coupons []string
	for _, l := range txs[0].Lines {
		if strings.HasPrefix(l.Name, "Coupon ") {
			if l.Price != 0 || l.Quantity != 1 {
				t.Errorf("coupon line %+v: want one at zero", l)
			}
			coupons = append(coupons, l.Name)
		}
	}
	if strings.Join(coupons, ",") != "Coupon FALL10,Coupon VIP" {
		t.Fatalf("coupon lines %v, want FALL10 and VIP once each", coupons)
	}
	found := 0
	for _, p := range e.fake.Products() {
		if p.SKU == "cartrelay-coupon-FALL10" || p.SKU == "cartrelay-coupon-VIP" {
			found++
		}
	}
	if found != 2 {
		t.Fatalf("coupon products %+v", e.fake.Products())
	}
	// A second order with the same code reuses its product.
	e.mustDeliver(couponOrder("C-2"))
	if n := calls(e, "POST", "/Products"); n != 3 {
		t.Fatalf("%d products created for two orders with the same codes, want 3 (the item and two coupons)", n)
	}
}

// TestCouponLinesRefused: should ONTRAPORT refuse a zero-priced line (its documentation does not
// say), the purchase is logged without the coupon lines, once, and the delivery log says why.
func TestCouponLinesRefused(t *testing.T) {
	e := newEnv(t, func(fo *ontraportfake.Options, _ *Options, _ *accounts.Account) { fo.RefuseZeroPrice = true })
	out := e.mustDeliver(couponOrder("C-3"))
	txs := e.fake.TransactionsFor("ultracart:C-3")
	if len(txs) != 1 || txs[0].Total != ontraportfake.MustAmount("90.00") || len(txs[0].Lines) != 1 {
		t.Fatalf("transactions %+v", txs)
	}
	if !strings.Contains(out.Note, "refused the transaction with its coupon lines") {
		t.Fatalf("note %q", out.Note)
	}
	if n := calls(e, "POST", "/transaction/processManual"); n != 2 {
		t.Fatalf("%d processManual calls, want the refused one and the one without coupons", n)
	}
}
