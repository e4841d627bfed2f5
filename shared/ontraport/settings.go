package ontraport

import (
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/outbound"
)

// DefaultRequestsPerMinute is ONTRAPORT's limit per account (a rolling minute).
const DefaultRequestsPerMinute = 180

// invoiceSuppressed is the invoice_template value that tells ONTRAPORT not to email an invoice.
// The cart has already sent its receipt, so a second document would confuse the customer.
const invoiceSuppressed = -1

// defaultStatusWords are the words of UltraCart's former ONTRAPORT integration, so ONTRAPORT
// automations built for it keep working. Its sixth word, "cancelled download", stands for an auto
// order cancelled because the customer bought a downgrade item (UltraCart's cancel_downgrade):
// the word is kept as that integration spelt it, since automations match it letter for letter.
func defaultStatusWords() map[domain.SubscriptionStatus]string {
	return map[domain.SubscriptionStatus]string{
		domain.SubActive:        "active",
		domain.SubPaused:        "paused",
		domain.SubPaymentFailed: "card declined",
		domain.SubCancelled:     "cancelled",
		domain.SubMerged:        "cancelled upgrade",
		domain.SubDowngraded:    "cancelled download",
		domain.SubDisabled:      "terminated",
	}
}

// config is an account's ONTRAPORT settings, checked, with defaults applied.
type config struct {
	baseURL string
	appID   string
	apiKey  accounts.Secret
	// dry is true without an API key: requests are recorded, not sent.
	dry             bool
	perMinute       int
	invoiceTemplate int

	contacts, orders, refunds, subscriptions, affiliates, products bool

	statusWords map[domain.SubscriptionStatus]string
	// tagSubscription is a template; "{status}" becomes the status word. Empty: no tags.
	tagSubscription string
	tagAffiliate    string
	// tagShipped and tagDelivered mark shipments and deliveries; empty (the default): none.
	tagShipped, tagDelivered string
	// tagPaymentDeclined marks a declined one-off payment; empty: none.
	tagPaymentDeclined string
	// erasure is what an erasure does to the contact: ErasureAnonymize or ErasureDelete.
	erasure string
	// tagAffiliateApproved marks an approved affiliate; empty: none.
	tagAffiliateApproved string
	fields               fieldNames
}

// fieldNames are the configured contact fields (a key such as "f1234" or a field's name);
// empty means not sent.
type fieldNames struct {
	ltv, purchaseCount, lastPurchase, subscriptionStatus, subscriptions, affiliate, paymentStatus string
	// affiliateID and affiliateApproved describe the contact as a member of the affiliate
	// program (UltraCart's former integration sent "AffiliateId" and "Affiliate Approved").
	affiliateID, affiliateApproved string
}

// off is the value that turns a tag or a field off; an unset one takes its default.
const off = "-"

// orDefault is a tag or field setting: unset takes def, off becomes "" (not sent).
func orDefault(v, def string) string {
	switch v {
	case "":
		return def
	case off:
		return ""
	}
	return v
}

// CheckSettings reports the account's unusable ONTRAPORT settings, so `accounts put` can refuse
// them before any delivery depends on them.
func CheckSettings(a accounts.Account) error {
	_, err := configFor(a)
	return err
}

// configFor reads and checks the account's ONTRAPORT section. Unset settings take their
// defaults here, not in the account file, so a default changed in a later release applies to
// every account that did not choose a value.
func configFor(a accounts.Account) (config, error) {
	get := func(k string) string { return a.Text(keyPath(k)) }
	flag := func(k string) bool { return a.Flag(keyPath(k)) }
	apiKey := a.SecretAt(string(APIKey))
	c := config{
		baseURL:              strings.TrimRight(get(keyBaseURL), "/"),
		appID:                get(keyAppID),
		apiKey:               apiKey,
		dry:                  !apiKey.IsSet(),
		perMinute:            DefaultRequestsPerMinute,
		invoiceTemplate:      invoiceSuppressed,
		contacts:             !flag("disable_contacts"),
		orders:               !flag("disable_orders"),
		refunds:              !flag("disable_refunds"),
		subscriptions:        !flag("disable_subscriptions"),
		affiliates:           !flag("disable_affiliates"),
		products:             !flag("disable_products"),
		statusWords:          defaultStatusWords(),
		tagSubscription:      orDefault(get("tags.subscription"), "Subscription: {status}"),
		tagAffiliate:         orDefault(get("tags.affiliate"), "Affiliate referral"),
		tagShipped:           orDefault(get("tags.shipped"), ""),
		tagDelivered:         orDefault(get("tags.delivered"), ""),
		tagPaymentDeclined:   orDefault(get("tags.payment_declined"), "Payment declined"),
		tagAffiliateApproved: orDefault(get("tags.affiliate_approved"), "Affiliate approved"),
		erasure:              ErasureAnonymize,
		fields: fieldNames{
			ltv:                orDefault(get("fields.ltv"), "Lifetime Value"),
			purchaseCount:      orDefault(get("fields.purchase_count"), "Purchase Count"),
			lastPurchase:       orDefault(get("fields.last_purchase"), "Last Purchase Date"),
			subscriptionStatus: orDefault(get("fields.subscription_status"), "Subscription Status"),
			subscriptions:      orDefault(get("fields.subscriptions"), "Subscriptions"),
			affiliate:          orDefault(get("fields.affiliate"), "Referring Affiliate"),
			paymentStatus:      orDefault(get("fields.payment_status"), "Last Payment Status"),
			affiliateID:        orDefault(get("fields.affiliate_id"), "AffiliateId"),
			affiliateApproved:  orDefault(get("fields.affiliate_approved"), "Affiliate Approved"),
		},
	}
	if c.baseURL == "" {
		c.baseURL = DefaultBaseURL
	}
	if err := outbound.CheckBaseURL(c.baseURL); err != nil {
		// Stored before the check existed: the key must not travel in clear or to a stranger.
		return config{}, &SettingsError{Key: keyBaseURL, Value: c.baseURL, Reason: err.Error()}
	}
	if v := get(keyRate); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return config{}, &SettingsError{Key: keyRate, Value: v, Reason: "must be a whole number of at least 1"}
		}
		c.perMinute = n
	}
	if flag(keyInvoice) {
		c.invoiceTemplate = 1
		if v := get(keyTemplate); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return config{}, &SettingsError{Key: keyTemplate, Value: v, Reason: "must be an ONTRAPORT invoice template id (a whole number)"}
			}
			c.invoiceTemplate = n
		}
	}
	for st, k := range map[domain.SubscriptionStatus]string{
		domain.SubActive: "active", domain.SubPaused: "paused", domain.SubPaymentFailed: "payment_failed",
		domain.SubCancelled: "cancelled", domain.SubMerged: "merged", domain.SubDowngraded: "downgraded",
		domain.SubDisabled: "disabled",
	} {
		if w := get("subscription_status." + k); w != "" {
			c.statusWords[st] = w
		}
	}
	switch e := get(keyErasure); strings.ToLower(strings.TrimSpace(e)) {
	case "", ErasureAnonymize:
	case ErasureDelete:
		c.erasure = ErasureDelete
	default:
		return config{}, &SettingsError{Key: keyErasure, Value: e,
			Reason: `must be "anonymize" (blank the erased contact's personal fields and keep its transactions) or "delete" (delete the contact)`}
	}
	if !c.dry && c.appID == "" {
		// Every request would be refused: ONTRAPORT needs the app id beside the key.
		return config{}, &SettingsError{Key: keyAppID, Value: "", Reason: "is required with an api_key (ONTRAPORT sends both from its API key manager)"}
	}
	return c, nil
}

// statusWord is the word ONTRAPORT sees for a subscription status; an unknown status passes
// through unchanged rather than being dropped.
func (c config) statusWord(s domain.SubscriptionStatus) string {
	if w, ok := c.statusWords[s]; ok {
		return w
	}
	return string(s)
}

// subscriptionTag is the tag for a status word, "" when subscription tags are off.
func (c config) subscriptionTag(word string) string {
	if c.tagSubscription == "" || word == "" {
		return ""
	}
	return strings.ReplaceAll(c.tagSubscription, "{status}", word)
}
