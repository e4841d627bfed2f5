package iterable

import (
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// API paths, relative to the base URL (Iterable's Swagger: /api/...).
const (
	PathUsersUpdate      = "/api/users/update"
	PathUsersBulkUpdate  = "/api/users/bulkUpdate"
	PathUsersUpdateEmail = "/api/users/updateEmail"
	PathTrackPurchase    = "/api/commerce/trackPurchase"
	PathUpdateCart       = "/api/commerce/updateCart"
	PathEventsTrack      = "/api/events/track"
	PathEventsTrackBulk  = "/api/events/trackBulk"
	PathListsSubscribe   = "/api/lists/subscribe"
	PathListsUnsubscribe = "/api/lists/unsubscribe"
	PathUsersForget      = "/api/users/forget"
	dateLayout           = "2006-01-02 15:04:05 -07:00"
	maxIterableIDBytes   = 512
	maxRecordedBodyBytes = 8 << 10
	maxResponseBodyBytes = 1 << 20
	maxBulkUsers         = 1000
	maxBulkBodyBytes     = 4 << 20
	redactedHeaderValue  = "[redacted]"
	headerAPIKey         = "Api-Key"
	contentTypeJSON      = "application/json"
	defaultHTTPTimeout   = 15 * time.Second
	defaultMaxInlineWait = 5 * time.Second
)

// Custom event names. Iterable types a field by the first value it sees per event name, so
// every event keeps its fields' types fixed (see Double and Date).
const (
	EventOrderRefunded             = "orderRefunded"
	EventOrderShipped              = "orderShipped"
	EventOrderOutForDelivery       = "orderOutForDelivery"
	EventOrderDelivered            = "orderDelivered"
	EventOrderChargedBack          = "orderChargedBack"
	EventChargebackReversed        = "orderChargebackReversed"
	EventOrderReversed             = "orderReversed"
	EventOrderPaymentFailed        = "orderPaymentFailed"
	EventReviewRequest             = "reviewRequest"
	EventCartAbandoned             = "cartAbandoned"
	EventSubscriptionStarted       = "subscriptionStarted"
	EventSubscriptionRenewed       = "subscriptionRenewed"
	EventSubscriptionPaymentFailed = "subscriptionPaymentFailed"
	EventSubscriptionCancelled     = "subscriptionCancelled"
	EventSubscriptionPaused        = "subscriptionPaused"
	EventSubscriptionResumed       = "subscriptionResumed"
	EventRenewalScheduled          = "renewalScheduled"
	EventPageView                  = "pageView"
)

// Double is a JSON number that always has a decimal point. Iterable fixes a field's type from
// the first value it receives; an order of exactly 100 dollars sent as 100 would make "total" a
// long, and the next 129.90 would then be refused (RequestFieldsTypesMismatched).
type Double string

// MoneyDouble is m in major units, exactly (from its decimal text, never through a float).
func MoneyDouble(m domain.Money) Double { return Double(m.Decimal()) }

// MarshalJSON writes the number with a decimal point.
func (d Double) MarshalJSON() ([]byte, error) {
	s := string(d)
	if s == "" {
		s = "0"
	}
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return []byte(s), nil
}

// Date is a time in Iterable's date format ("2006-01-02 15:04:05 +00:00"), which Iterable
// recognises as a date field, in UTC.
type Date time.Time

// MarshalJSON writes the date as a string.
func (d Date) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(d).UTC().Format(dateLayout) + `"`), nil
}

// FormatDate is t in Iterable's date format.
func FormatDate(t time.Time) string { return t.UTC().Format(dateLayout) }

// Fields are dataFields: an object whose keys Iterable creates on first sight.
type Fields map[string]any

// UserUpdate is ApiUserUpdateRequest (users/update) and OptionalApiUser (users/bulkUpdate,
// lists/subscribe).
type UserUpdate struct {
	Email      string `json:"email"`
	DataFields Fields `json:"dataFields,omitempty"`
}

// CommerceItem is one line of a purchase or cart.
type CommerceItem struct {
	ID         string   `json:"id"`
	SKU        string   `json:"sku,omitempty"`
	Name       string   `json:"name"`
	Price      Double   `json:"price"`
	Quantity   int64    `json:"quantity"`
	ImageURL   string   `json:"imageUrl,omitempty"`
	URL        string   `json:"url,omitempty"`
	Categories []string `json:"categories,omitempty"`
	DataFields Fields   `json:"dataFields,omitempty"`
}

// TrackPurchase is TrackPurchaseRequest.
type TrackPurchase struct {
	ID         string         `json:"id"`
	User       UserUpdate     `json:"user"`
	Items      []CommerceItem `json:"items"`
	Total      Double         `json:"total"`
	CreatedAt  int64          `json:"createdAt,omitempty"`
	DataFields Fields         `json:"dataFields,omitempty"`
	CampaignID *int32         `json:"campaignId,omitempty"`
	TemplateID *int32         `json:"templateId,omitempty"`
}

// UpdateCart is UpdateCartRequest.
type UpdateCart struct {
	User  UserUpdate     `json:"user"`
	Items []CommerceItem `json:"items"`
}

// Track is TrackRequest (events/track). ID makes a retry update the event instead of adding a
// second one.
type Track struct {
	ID         string `json:"id"`
	Email      string `json:"email"`
	EventName  string `json:"eventName"`
	CreatedAt  int64  `json:"createdAt,omitempty"`
	DataFields Fields `json:"dataFields,omitempty"`
	CampaignID *int64 `json:"campaignId,omitempty"`
	TemplateID *int64 `json:"templateId,omitempty"`
}

// UpdateEmail is UpdateEmailRequest.
type UpdateEmail struct {
	CurrentEmail string `json:"currentEmail"`
	NewEmail     string `json:"newEmail"`
}

// Subscribe is SubscribeRequest.
type Subscribe struct {
	ListID      int64        `json:"listId"`
	Subscribers []UserUpdate `json:"subscribers"`
}

// Unsubscriber is one user of an unsubscribe.
type Unsubscriber struct {
	Email string `json:"email"`
}

// Unsubscribe is UnsubscribeRequest. channelUnsubscribe is left at its default (false): leaving
// a list must not unsubscribe the person from the whole channel.
type Unsubscribe struct {
	ListID      int64          `json:"listId"`
	Subscribers []Unsubscriber `json:"subscribers"`
}

// BulkUpdate is BulkUpdateUsersRequest.
type BulkUpdate struct {
	Users []UserUpdate `json:"users"`
}

// APIResponse is IterableApiResponse, the envelope of most answers and of errors.
type APIResponse struct {
	Msg    string         `json:"msg"`
	Code   string         `json:"code"`
	Params map[string]any `json:"params,omitempty"`
}

// BulkResponse is UserBulkUpdateListResponse (users/bulkUpdate, lists/subscribe,
// lists/unsubscribe).
type BulkResponse struct {
	SuccessCount  int                 `json:"successCount"`
	FailCount     int                 `json:"failCount"`
	FailedUpdates map[string][]string `json:"failedUpdates,omitempty"`
	InvalidEmails []string            `json:"invalidEmails,omitempty"`
}

// Failed lists every email the response names as failed, with the category
// ("forgottenEmails", "conflictEmails", ...).
func (b BulkResponse) Failed() map[string]string {
	out := map[string]string{}
	for cat, emails := range b.FailedUpdates {
		for _, e := range emails {
			out[e] = cat
		}
	}
	for _, e := range b.InvalidEmails {
		if _, ok := out[e]; !ok {
			out[e] = "invalidEmails"
		}
	}
	return out
}

// UserRequest names one user (UserRequest in Iterable's Swagger): users/forget takes it.
type UserRequest struct {
	Email string `json:"email"`
}
