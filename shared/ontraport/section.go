package ontraport

import (
	"strings"

	"github.com/cartrelay/cartrelay/shared/accounts"
)

// Name is the destination's name: its queue, its section of the account file and its name in
// the delivery log.
const Name = "ontraport"

// DefaultBaseURL is ONTRAPORT's API; ontraport.base_url can point an account at a fake or a
// proxy.
const DefaultBaseURL = "https://api.ontraport.com/1"

// APIKey is the account's ONTRAPORT API key, the one secret a delivery opens.
const APIKey accounts.Field = Name + ".api_key"

// key is the dotted account-file key of a setting of the section.
func keyPath(k string) string { return Name + "." + k }

// Keys of the account file's "ontraport" section, as written under it.
const (
	keyEnabled  = "enabled"
	keyAppID    = "app_id"
	keyAPIKey   = "api_key"
	keyBaseURL  = "base_url"
	keyHistory  = "history"
	keyErasure  = "erasure"
	keyRate     = "requests_per_minute"
	keyInvoice  = "send_invoice"
	keyTemplate = "invoice_template"
)

// Section is the destination's part of the account file. Numbers, words and names are kept as
// written; configFor reads and checks them (docs/ontraport.md says what each means). The order
// is the console's; the keys it does not show are for operators (`cartrelay accounts put`).
func Section() accounts.Section {
	text := func(k string) accounts.SectionField {
		return accounts.SectionField{Key: k, Kind: accounts.KindText, Form: accounts.FormHidden}
	}
	off := func(k, label string) accounts.SectionField {
		return accounts.SectionField{Key: k, Kind: accounts.KindBool, Label: label}
	}
	return accounts.Section{
		Name: Name,
		Fields: []accounts.SectionField{
			{Key: keyEnabled, Kind: accounts.KindBool, Label: "Send to ONTRAPORT"},
			{Key: keyAppID, Kind: accounts.KindText, Label: "App ID"},
			{Key: keyAPIKey, Kind: accounts.KindSecret, Label: "API key", Help: "checked with ONTRAPORT, with the App ID, before it is saved"},
			{Key: keyBaseURL, Kind: accounts.KindURL, Default: DefaultBaseURL, Form: accounts.FormHidden},
			{Key: keyHistory, Kind: accounts.KindHistory, Default: accounts.HistoryProfiles, Form: accounts.FormHidden},
			text(keyRate),
			{Key: keyInvoice, Kind: accounts.KindBool, Label: "Send ONTRAPORT invoices"},
			{Key: keyTemplate, Kind: accounts.KindText, Label: "Invoice template id"},
			// The toggles are opt-outs because every account-file boolean defaults to false.
			off("disable_contacts", "Do not send contacts"),
			off("disable_orders", "Do not send orders"),
			off("disable_refunds", "Do not send refunds"),
			off("disable_subscriptions", "Do not send subscriptions"),
			off("disable_affiliates", "Do not send affiliates"),
			off("disable_products", "Do not send products"),
			// The words ONTRAPORT sees for each subscription status.
			text("subscription_status.active"),
			text("subscription_status.paused"),
			text("subscription_status.payment_failed"),
			text("subscription_status.cancelled"),
			text("subscription_status.merged"),
			text("subscription_status.downgraded"),
			text("subscription_status.disabled"),
			// Tag names ("{status}" in the subscription tag becomes the status word).
			text("tags.subscription"),
			text("tags.affiliate"),
			{Key: "tags.shipped", Kind: accounts.KindText, Label: "Tag on each shipment", Help: "empty: none"},
			{Key: "tags.delivered", Kind: accounts.KindText, Label: "Tag on each delivery", Help: "empty: none"},
			text("tags.payment_declined"),
			text("tags.affiliate_approved"),
			// The contact fields kept current (a field key such as "f1234", or its name).
			text("fields.ltv"),
			text("fields.purchase_count"),
			text("fields.last_purchase"),
			text("fields.subscription_status"),
			text("fields.subscriptions"),
			text("fields.affiliate"),
			text("fields.payment_status"),
			text("fields.affiliate_id"),
			text("fields.affiliate_approved"),
			// What erasing a contact does to its ONTRAPORT contact: "anonymize" or "delete".
			text(keyErasure),
		},
	}
}

// Enabled reports whether the account routes facts to ONTRAPORT.
func Enabled(a accounts.Account) bool { return a.Flag(keyPath(keyEnabled)) }

// Erasure is what erasing a contact does to its ONTRAPORT contact, as the account file says
// it: ErasureAnonymize (also when unset) or ErasureDelete.
func Erasure(a accounts.Account) string {
	if strings.ToLower(strings.TrimSpace(a.Text(keyPath(keyErasure)))) == ErasureDelete {
		return ErasureDelete
	}
	return ErasureAnonymize
}
