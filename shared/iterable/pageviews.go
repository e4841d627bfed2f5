package iterable

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Page views (POST /track/{account}, served by the webhook function) come from the snippet in
// snippet.js. A browser is known once a page has told the snippet who the shopper is (a
// logged-in page, the order confirmation): its random visitor id then maps to an email.
// Views of a known browser are kept under the email, A#<acct>#PV#<email> / <time>#<visitor>,
// and a KindPageViews fact on the contact's FIFO group makes the destination send them as
// pageView events. Views of an unknown browser wait under A#<acct>#PVV#<visitor> for at most
// PageViewTTL and are moved to the email when the browser is identified. The client's IP is
// used only as a hashed rate-limit key, which expires with its window.

// KindPageViews is the follow-up fact that sends a contact's pending page views.
const KindPageViews domain.FactKind = "IterablePageViews"

// Limits of the tracking endpoint.
const (
	MaxTrackBodyBytes = 8 << 10
	PageViewTTL       = 30 * 24 * time.Hour
	visitorTTL        = 400 * 24 * time.Hour
	maxTrackURLLen    = 2048
)

// DefaultTrackPerIP is how many page views one IP may post per minute per account.
func DefaultTrackPerIP() ratelimit.Limit { return ratelimit.Limit{Requests: 120, Window: time.Minute} }

// AccountGetter finds an account (accounts.Repo does).
type AccountGetter interface {
	Get(ctx context.Context, id string) (accounts.Account, error)
}

// TrackerDeps are what the tracking endpoint runs over.
type TrackerDeps struct {
	Store    store.Store
	Queue    queue.Queue
	Accounts AccountGetter
	Clock    clock.Clock
	Log      *slog.Logger
	// PerIP overrides DefaultTrackPerIP.
	PerIP ratelimit.Limit
	// Keep, when set, is given every page view of an existing account, whether or not the
	// account forwards to Iterable (the reports keep them).
	Keep func(ctx context.Context, acct accounts.Account, v KeptView) error
}

// KeptView is a page view as Keep receives it.
type KeptView struct {
	Visitor, URL, Referrer, Title, Email string
	At                                   time.Time
}

// Tracker serves POST /track/{account}.
type Tracker struct {
	d TrackerDeps
}

// NewTracker checks deps.
func NewTracker(d TrackerDeps) (*Tracker, error) {
	if d.Store == nil || d.Queue == nil || d.Accounts == nil {
		return nil, errors.New("iterable tracker: store, queue and accounts are required")
	}
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.PerIP.Requests == 0 {
		d.PerIP = DefaultTrackPerIP()
	}
	if err := d.PerIP.Valid(); err != nil {
		return nil, fmt.Errorf("iterable tracker: %w", err)
	}
	return &Tracker{d: d}, nil
}

// pageView is what the snippet posts, and what is kept until it is sent.
type pageView struct {
	Visitor  string    `json:"visitor"`
	URL      string    `json:"url"`
	Title    string    `json:"title,omitempty"`
	Referrer string    `json:"referrer,omitempty"`
	Email    string    `json:"email,omitempty"`
	At       time.Time `json:"at,omitzero"`
}

func trackResponse(status int, msg string) events.APIGatewayV2HTTPResponse {
	h := map[string]string{
		// The snippet runs on the merchant's storefront, another origin; it posts no cookies.
		"access-control-allow-origin":  "*",
		"access-control-allow-methods": "POST, OPTIONS",
		"access-control-allow-headers": "content-type",
		"access-control-max-age":       "86400",
		"cache-control":                "no-store",
	}
	if msg == "" {
		return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: h}
	}
	h["content-type"] = "application/json"
	b, _ := json.Marshal(map[string]string{"error": msg})
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: h, Body: string(b)}
}

func validVisitor(v string) bool {
	if len(v) < 8 || len(v) > 64 {
		return false
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Handle answers one request to /track/{account}. Anything that is not a usable page view gets
// a 4xx; a page view for an account that does not forward to Iterable is dropped with 204, as
// the snippet cannot act on the difference.
func (t *Tracker) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	path := req.RawPath
	if path == "" {
		path = req.RequestContext.HTTP.Path
	}
	account, ok := strings.CutPrefix(path, "/track/")
	account = strings.Trim(account, "/")
	if !ok || account == "" || strings.Contains(account, "/") || accounts.ValidateID(account) != nil {
		return trackResponse(http.StatusNotFound, "page views go to /track/ACCOUNT")
	}
	switch req.RequestContext.HTTP.Method {
	case http.MethodOptions:
		return trackResponse(http.StatusNoContent, "")
	case http.MethodPost:
	default:
		return trackResponse(http.StatusMethodNotAllowed, "use POST")
	}
	log := t.d.Log.With(slog.String("account", account))
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		if base64.StdEncoding.DecodedLen(len(req.Body)) > MaxTrackBodyBytes+3 {
			return trackResponse(http.StatusRequestEntityTooLarge, "a page view is at most 8 KB")
		}
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return trackResponse(http.StatusBadRequest, "the body is not valid base64")
		}
		body = b
	}
	if len(body) > MaxTrackBodyBytes {
		return trackResponse(http.StatusRequestEntityTooLarge, "a page view is at most 8 KB")
	}
	var pv pageView
	if err := json.Unmarshal(body, &pv); err != nil {
		return trackResponse(http.StatusBadRequest, "the body is not a page view (JSON with visitor and url)")
	}
	u, err := url.Parse(pv.URL)
	if !validVisitor(pv.Visitor) || err != nil || (u.Scheme != "https" && u.Scheme != "http") || len(pv.URL) > maxTrackURLLen {
		return trackResponse(http.StatusBadRequest, "a page view needs a visitor id (8-64 letters, digits, - or _) and an absolute http(s) url")
	}
	if pv.Email != "" {
		if pv.Email, err = domain.NormalizeEmail(pv.Email); err != nil {
			return trackResponse(http.StatusBadRequest, "email is not an address")
		}
	}
	ip := req.RequestContext.HTTP.SourceIP
	sum := sha256.Sum256([]byte(account + "|" + ip))
	lim, err := ratelimit.NewShared(t.d.Store, t.d.Clock, "A#"+account+"#R#track:"+hex.EncodeToString(sum[:12]), t.d.PerIP)
	if err != nil {
		return trackResponse(http.StatusInternalServerError, "rate limit misconfigured")
	}
	if wait, err := lim.Reserve(ctx); err != nil {
		log.Error("page view rate window", slog.Any("error", err))
		return trackResponse(http.StatusServiceUnavailable, "try again later")
	} else if wait > 0 {
		r := trackResponse(http.StatusTooManyRequests, "too many page views from this address")
		r.Headers["retry-after"] = fmt.Sprint(int(wait.Seconds()) + 1)
		return r
	}
	acct, err := t.d.Accounts.Get(ctx, account)
	if errors.Is(err, accounts.ErrNotFound) {
		return trackResponse(http.StatusNoContent, "")
	}
	if err != nil {
		log.Error("read account", slog.Any("error", err))
		return trackResponse(http.StatusServiceUnavailable, "try again later")
	}
	pv.At = t.d.Clock.Now()
	if t.d.Keep != nil {
		if err := t.d.Keep(ctx, acct, KeptView{Visitor: pv.Visitor, URL: pv.URL, Referrer: pv.Referrer, Title: pv.Title, Email: pv.Email, At: pv.At}); err != nil {
			log.Error("page view not kept", slog.Any("error", err))
			return trackResponse(http.StatusServiceUnavailable, "try again later")
		}
	}
	if !acct.Iterable.Enabled {
		return trackResponse(http.StatusNoContent, "")
	}
	if err := t.record(ctx, account, pv); err != nil {
		log.Error("page view not recorded", slog.Any("error", err))
		return trackResponse(http.StatusServiceUnavailable, "try again later")
	}
	return trackResponse(http.StatusNoContent, "")
}

func visitorPK(account, visitor string) string { return "A#" + account + "#V#" + visitor }
func pendingPK(account, visitor string) string { return "A#" + account + "#PVV#" + visitor }

// PageViewsPK holds a known contact's page views until they are sent.
func PageViewsPK(account, email string) string { return "A#" + account + "#PV#" + email }

type visitorDoc struct {
	Email string `json:"email"`
}

func (t *Tracker) record(ctx context.Context, account string, pv pageView) error {
	email := pv.Email
	if email != "" {
		data, _ := json.Marshal(visitorDoc{Email: email})
		it := store.Item{PK: visitorPK(account, pv.Visitor), SK: "-", Data: data, ExpiresAt: pv.At.Add(visitorTTL)}
		if err := t.d.Store.Write(ctx, store.PutItem(it, store.Always)); err != nil {
			return err
		}
	} else {
		it, err := t.d.Store.Get(ctx, visitorPK(account, pv.Visitor), "-")
		switch {
		case err == nil:
			var d visitorDoc
			if json.Unmarshal(it.Data, &d) == nil {
				email = d.Email
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	pv.Email = ""
	data, _ := json.Marshal(pv)
	// The content hash tells apart two views of one browser in the same instant.
	sk := pv.At.UTC().Format("2006-01-02T15:04:05.000000000Z") + "#" + pv.Visitor + "#" + shortHash(string(data))[:8]
	if email == "" {
		// Unknown browser: kept until it is identified, or dropped after PageViewTTL.
		return t.d.Store.Write(ctx, store.PutItem(store.Item{PK: pendingPK(account, pv.Visitor), SK: sk, Data: data,
			ExpiresAt: pv.At.Add(PageViewTTL)}, store.Always))
	}
	ws := []store.Write{store.PutItem(store.Item{PK: PageViewsPK(account, email), SK: sk, Data: data, ExpiresAt: pv.At.Add(PageViewTTL)}, store.Always)}
	// Identified now or before: views the browser made while unknown join the contact.
	earlier, err := store.QueryAll(ctx, t.d.Store, store.Query{PK: pendingPK(account, pv.Visitor)})
	if err != nil {
		return err
	}
	for _, it := range earlier {
		if len(ws)+2 > store.MaxTransactWrites {
			break // the rest move with the browser's next view
		}
		moved := it
		moved.PK = PageViewsPK(account, email)
		ws = append(ws, store.PutItem(moved, store.Always), store.DeleteKey(store.Key{PK: it.PK, SK: it.SK}, store.Always))
	}
	if err := t.d.Store.Transact(ctx, ws); err != nil {
		return err
	}
	id := shortHash(account + "|" + email + "|" + sk)
	f := domain.Fact{ID: account + ":" + string(KindPageViews) + ":" + id, Account: account, Kind: KindPageViews, Email: email, OccurredAt: pv.At}
	body, _ := json.Marshal(f)
	return t.d.Queue.Send(ctx, queue.Iterable, []queue.Message{{Body: string(body), GroupID: account + "|" + email, DedupID: f.ID,
		Attributes: map[string]string{"account": account, "fact_kind": string(KindPageViews)}}})
}

// pageViews sends a contact's pending page views as pageView events and removes them once
// Iterable has them; the event id makes a resend harmless.
func (d *Destination) pageViews(ctx context.Context, sess *session, acct accounts.Account, s Settings, f domain.Fact) (deliver.Outcome, error) {
	if !s.RegularEvents {
		return skipped("regular events are off (iterable.disable_regular_events)")
	}
	items, err := store.QueryAll(ctx, d.store, store.Query{PK: PageViewsPK(acct.ID, f.Email)})
	if err != nil {
		return deliver.Outcome{}, fmt.Errorf("read page views of %s: %w", f.Email, err)
	}
	if len(items) == 0 {
		return skipped("no page views waiting (sent with an earlier fact)")
	}
	for _, it := range items {
		var pv pageView
		if err := json.Unmarshal(it.Data, &pv); err != nil {
			continue
		}
		ev := pageViewEvent(acct.ID, f.Email, it.SK, pv)
		if err := sess.post(ctx, PathEventsTrack, ev, nil); err != nil {
			return deliver.Outcome{}, err
		}
		if err := d.store.Write(ctx, store.DeleteKey(store.Key{PK: it.PK, SK: it.SK}, store.Always)); err != nil {
			return deliver.Outcome{}, fmt.Errorf("remove a sent page view: %w", err)
		}
	}
	return deliver.Outcome{Note: fmt.Sprintf("%d page view(s)", len(items))}, nil
}

// pageViewEvent is the pageView event for one stored page view.
func pageViewEvent(account, email, key string, pv pageView) Track {
	df := Fields{"url": pv.URL}
	if u, err := url.Parse(pv.URL); err == nil {
		setString(df, "path", u.Path)
		setString(df, "host", u.Host)
	}
	setString(df, "title", pv.Title)
	setString(df, "referrer", pv.Referrer)
	setDate(df, "viewedAt", pv.At)
	return Track{ID: account + ":pv:" + shortHash(email+"|"+key), Email: email, EventName: EventPageView, CreatedAt: unix(pv.At), DataFields: df}
}
