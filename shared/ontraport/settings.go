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

// configFor checks s. Unset settings take their defaults here, not in the account file, so a
// default changed in a later release applies to every account that did not choose a value.
// CheckSettings reports the account's unusable ONTRAPORT settings, so `accounts put` can refuse
// them before any delivery depends on them.
func CheckSettings(a accounts.Account) error {
	_, err := configFor(a.Ontraport)
	return err
}

func configFor(s accounts.OntraportSettings) (config, error) {
	c := config{
		baseURL:              strings.TrimRight(s.BaseURL, "/"),
		appID:                s.AppID,
		apiKey:               s.APIKey,
		dry:                  !s.APIKey.IsSet(),
		perMinute:            DefaultRequestsPerMinute,
		invoiceTemplate:      invoiceSuppressed,
		contacts:             !s.DisableContacts,
		orders:               !s.DisableOrders,
		refunds:              !s.DisableRefunds,
		subscriptions:        !s.DisableSubscriptions,
		affiliates:           !s.DisableAffiliates,
		products:             !s.DisableProducts,
		statusWords:          defaultStatusWords(),
		tagSubscription:      orDefault(s.TagSubscription, "Subscription: {status}"),
		tagAffiliate:         orDefault(s.TagAffiliate, "Affiliate referral"),
		tagShipped:           orDefault(s.TagShipped, ""),
		tagDelivered:         orDefault(s.TagDelivered, ""),
		tagPaymentDeclined:   orDefault(s.TagPaymentDeclined, "Payment declined"),
		tagAffiliateApproved: orDefault(s.TagAffiliateApproved, "Affiliate approved"),
		erasure:              ErasureAnonymize,
		fields: fieldNames{
			ltv:                orDefault(s.FieldLTV, "Lifetime Value"),
			purchaseCount:      orDefault(s.FieldPurchaseCount, "Purchase Count"),
			lastPurchase:       orDefault(s.FieldLastPurchase, "Last Purchase Date"),
			subscriptionStatus: orDefault(s.FieldSubscriptionStatus, "Subscription Status"),
			subscriptions:      orDefault(s.FieldSubscriptions, "Subscriptions"),
			affiliate:          orDefault(s.FieldAffiliate, "Referring Affiliate"),
			paymentStatus:      orDefault(s.FieldPaymentStatus, "Last Payment Status"),
			affiliateID:        orDefault(s.FieldAffiliateID, "AffiliateId"),
			affiliateApproved:  orDefault(s.FieldAffiliateApproved, "Affiliate Approved"),
		},
	}
	if c.baseURL == "" {
		c.baseURL = accounts.DefaultOntraportBaseURL
	}
	if err := outbound.CheckBaseURL(c.baseURL); err != nil {
		// Stored before the check existed: the key must not travel in clear or to a stranger.
		return config{}, &SettingsError{Key: "base_url", Value: c.baseURL, Reason: err.Error()}
	}
	if s.RequestsPerMinute != "" {
		n, err := strconv.Atoi(s.RequestsPerMinute)
		if err != nil || n < 1 {
			return config{}, &SettingsError{Key: "requests_per_minute", Value: s.RequestsPerMinute, Reason: "must be a whole number of at least 1"}
		}
		c.perMinute = n
	}
	if s.SendInvoice {
		c.invoiceTemplate = 1
		if s.InvoiceTemplate != "" {
			n, err := strconv.Atoi(s.InvoiceTemplate)
			if err != nil || n < 0 {
				return config{}, &SettingsError{Key: "invoice_template", Value: s.InvoiceTemplate, Reason: "must be an ONTRAPORT invoice template id (a whole number)"}
			}
			c.invoiceTemplate = n
		}
	}
	for st, w := range map[domain.SubscriptionStatus]string{
		domain.SubActive: s.StatusActive, domain.SubPaused: s.StatusPaused, domain.SubPaymentFailed: s.StatusPaymentFailed,
		domain.SubCancelled: s.StatusCancelled, domain.SubMerged: s.StatusMerged, domain.SubDowngraded: s.StatusDowngraded,
		domain.SubDisabled: s.StatusDisabled,
	} {
		if w != "" {
			c.statusWords[st] = w
		}
	}
	switch e := strings.ToLower(strings.TrimSpace(s.Erasure)); e {
	case "", ErasureAnonymize:
	case ErasureDelete:
		c.erasure = e
	default:
		return config{}, &SettingsError{Key: "erasure", Value: s.Erasure,
			Reason: `must be "anonymize" (blank the erased contact's personal fields and keep its transactions) or "delete" (delete the contact)`}
	}
	if !c.dry && c.appID == "" {
		// Every request would be refused: ONTRAPORT needs the app id beside the key.
		return config{}, &SettingsError{Key: "app_id", Value: "", Reason: "is required with an api_key (ONTRAPORT sends both from its API key manager)"}
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
