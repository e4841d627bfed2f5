package iterable

import (
	"github.com/cartrelay/cartrelay/shared/accounts"
)

// Name is the destination's name: its queue, its section of the account file and its name in
// the delivery log.
const Name = "iterable"

// DefaultBaseURL is Iterable's US API; iterable.data_center "eu" picks EUBaseURL while the base
// URL is this, and iterable.base_url can point an account at a fake or a proxy.
const DefaultBaseURL = "https://api.iterable.com"

// APIKey is the account's Iterable API key, the one secret a delivery opens.
const APIKey accounts.Field = Name + ".api_key"

// keyPath is the dotted account-file key of a setting of the section.
func keyPath(k string) string { return Name + "." + k }

// Keys of the account file's "iterable" section, as written under it.
const (
	keyEnabled          = "enabled"
	keyAPIKey           = "api_key"
	keyBaseURL          = "base_url"
	keyHistory          = "history"
	keyDataCenter       = "data_center"
	keyNoRegular        = "disable_regular_events"
	keyNoReturnCart     = "disable_return_cart_events"
	keyReturnCartDelay  = "return_cart_delay"
	keyAbandonCartAfter = "abandon_cart_after"
	keyEmailLists       = "email_list_ids"
	keySMSLists         = "sms_list_ids"
	keyPurchaseLists    = "purchase_list_ids"
	keyCartLists        = "cart_list_ids"
	keyReviewTemplate   = "review_url_template"
	keyReviewWait       = "review_wait"
	keyReviewAfter      = "review_after"
	keyReviewLinkTTL    = "review_link_ttl"
	keyThumbnailSize    = "thumbnail_size"
)

// Section is the destination's part of the account file. Durations, sizes and list ids are
// text as written ("30m", "1234, 5678"); ParseSettings reads and checks them, and unset means
// the default docs/iterable.md gives. The order is the console's; the keys it does not show are
// for operators (`cartrelay accounts put`).
func Section() accounts.Section {
	text := func(k, label, help string) accounts.SectionField {
		return accounts.SectionField{Key: k, Kind: accounts.KindText, Label: label, Help: help}
	}
	lists := func(k, label, help string) accounts.SectionField {
		return accounts.SectionField{Key: k, Kind: accounts.KindText, Label: label, Help: help, Form: accounts.FormPick}
	}
	return accounts.Section{
		Name: Name,
		Fields: []accounts.SectionField{
			{Key: keyEnabled, Kind: accounts.KindBool, Label: "Send to Iterable"},
			{Key: keyAPIKey, Kind: accounts.KindSecret, Label: "API key", Help: "checked with Iterable before it is saved"},
			{Key: keyBaseURL, Kind: accounts.KindURL, Default: DefaultBaseURL, Form: accounts.FormHidden},
			{Key: keyHistory, Kind: accounts.KindHistory, Default: accounts.HistoryProfiles, Form: accounts.FormHidden},
			text(keyDataCenter, "Data center", "us or eu"),
			// The toggles are opt-outs because every account-file boolean defaults to false.
			{Key: keyNoRegular, Kind: accounts.KindBool, Label: "Do not send purchases and events"},
			{Key: keyNoReturnCart, Kind: accounts.KindBool, Label: "Do not send abandoned carts"},
			text(keyReturnCartDelay, "Abandoned-cart event delay", "a duration, e.g. 1h"),
			text(keyAbandonCartAfter, "Cart counts as abandoned after", "a duration, e.g. 30m"),
			lists(keyEmailLists, "Email lists", "contacts who opt in to email join these lists"),
			lists(keySMSLists, "SMS lists", "contacts with a phone who opt in to SMS join these lists"),
			{Key: keyPurchaseLists, Kind: accounts.KindText, Form: accounts.FormHidden},
			{Key: keyCartLists, Kind: accounts.KindText, Form: accounts.FormHidden},
			text(keyReviewTemplate, "Review page URL template", ""),
			text(keyReviewWait, "Review request after", "a duration, e.g. 336h"),
			text(keyReviewAfter, "Review wait starts at", "shipment or delivery"),
			text(keyReviewLinkTTL, "Review links valid for", "a duration"),
			text(keyThumbnailSize, "Thumbnail size", "e.g. 200x200"),
		},
	}
}

// Enabled reports whether the account routes facts to Iterable.
func Enabled(a accounts.Account) bool { return a.Flag(keyPath(keyEnabled)) }

// ReviewURLTemplate is the account's review page template (iterable.review_url_template), as
// written; review links redirect to it.
func ReviewURLTemplate(a accounts.Account) string { return a.Text(keyPath(keyReviewTemplate)) }
