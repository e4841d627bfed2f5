package ontraport

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/secrets"
)

// TestSettingsFromTheAccountFile reads settings the way the forwarder gets them: written as an
// account file, stored by the accounts repo with its defaults, read back.
func TestSettingsFromTheAccountFile(t *testing.T) {
	e := newEnv(t)
	key, err := secrets.NewLocalKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	repo := accounts.NewRepo(e.st, secrets.NewSealer(key, e.clk), e.clk).WithSections(Section())
	ctx := context.Background()
	a, err := repo.Put(ctx, testAcct, []byte(`{"ontraport": {"enabled": true, "app_id": "`+testAppID+`", "api_key": "`+testKey+`"}}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := configFor(a)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := configFor(testAccount())
	want.baseURL = DefaultBaseURL
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults from the account file\n%+v\nwant\n%+v", got, want)
	}

	a, err = repo.Put(ctx, testAcct, []byte(`{"ontraport": {"requests_per_minute": "12", "send_invoice": true, "invoice_template": "3",
		"disable_refunds": true, "subscription_status": {"disabled": "cancelled download", "downgraded": "downgrade"},
		"tags": {"subscription": "UC {status}", "affiliate": "-"}, "fields": {"ltv": "f1571", "affiliate": null}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := configFor(a)
	if err != nil {
		t.Fatal(err)
	}
	if c.perMinute != 12 || c.invoiceTemplate != 3 || c.refunds || !c.orders ||
		c.statusWord(domain.SubDisabled) != "cancelled download" || c.statusWord(domain.SubPaymentFailed) != "card declined" ||
		c.statusWord(domain.SubDowngraded) != "downgrade" || c.statusWord(domain.SubMerged) != "cancelled upgrade" ||
		c.subscriptionTag("active") != "UC active" || c.tagAffiliate != "" || c.fields.ltv != "f1571" || c.fields.affiliate != "Referring Affiliate" {
		t.Fatalf("overrides: %+v", c)
	}
	if w := want.statusWord(domain.SubDowngraded); w != "cancelled download" {
		t.Fatalf("a subscription cancelled for a downgrade reads %q by default, want UltraCart's former word \"cancelled download\"", w)
	}
}
