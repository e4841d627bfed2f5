package iterable

import (
	"context"
	"crypto/sha256"
	_ "embed"
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
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/sitehosts"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/visitortoken"
)

// Page views (POST /track/{account}, served by the webhook function) come from the snippet in
// snippet.js, which the same function serves at GET /track/cartrelay.js. Each browser has a
// random visitor id. Nobody can tie a browser to a person by saying an address: a browser is
// identified only
//
//   - by an identity token the merchant's server signed with the account's tracking secret
//     (shared/visitortoken) on a page that knows the shopper, or
//   - by cartrelay after a purchase: the order confirmation page claims the order (its id and
//     the buyer's address); the claim is honoured only once cartrelay holds that order, with
//     that address, paid within ClaimWindow, and only for the first browser to claim it.
//
// Its visitor id then maps to the address. Views of a known browser are kept under the email,
// A#<acct>#PV#<email> / <time>#<visitor>, and a KindPageViews fact on the contact's FIFO group
// makes the destination send them as pageView events. Views of an unknown browser wait under
// A#<acct>#PVV#<visitor> for at most PageViewTTL, MaxAnonymousViews of them, and are moved to
// the email when the browser is identified. Only pages on the account's allowed_domains are
// accepted. The client's IP is used only as a hashed rate-limit key, which expires with its
// window; nothing at all is written for an account that does not exist or does not forward to
// Iterable.

// KindPageViews is the follow-up fact that sends a contact's pending page views.
const KindPageViews domain.FactKind = "IterablePageViews"

// Limits of the tracking endpoint.
const (
	MaxTrackBodyBytes = 8 << 10
	PageViewTTL       = 30 * 24 * time.Hour
	// MaxAnonymousViews is the most views an unidentified browser can have waiting; later ones
	// are dropped until it is identified.
	MaxAnonymousViews = 50
	// ClaimWindow is how long after an order's payment its confirmation page may claim it.
	ClaimWindow    = 24 * time.Hour
	claimRetryTTL  = time.Hour
	visitorTTL     = 400 * 24 * time.Hour
	maxTrackURLLen = 2048
	maxTitleLen    = 300
	maxOrderIDLen  = 128
)

// DefaultTrackPerIP is how many page views one IP may post per minute per account.
func DefaultTrackPerIP() ratelimit.Limit { return ratelimit.Limit{Requests: 120, Window: time.Minute} }

// ScriptPath is where the snippet is served.
const ScriptPath = "/track/cartrelay.js"

//go:embed snippet.js
var snippet string

// AccountGetter finds an account (accounts.Repo does), opening only the secrets named.
type AccountGetter interface {
	Get(ctx context.Context, id string, open ...accounts.Field) (accounts.Account, error)
}

// TrackerDeps are what the tracking endpoint runs over.
type TrackerDeps struct {
	Store    store.Store
	Queue    queue.Queue
	Accounts AccountGetter
	// Keys reads each account's tracking secret, which identity tokens are signed with; nil
	// means none, so no token verifies.
	Keys  accountkeys.Reader
	Clock clock.Clock
	Log   *slog.Logger
	// PerIP overrides DefaultTrackPerIP.
	PerIP ratelimit.Limit
	// Keep, when set, is given every accepted page view of an existing account, whether or not
	// the account forwards to Iterable (the reports keep them), with the address the browser
	// is known by, if any.
	Keep func(ctx context.Context, acct accounts.Account, v KeptView) error
	// Cart, when set, is given each cart a browser known by an address posts, for an account
	// that forwards to Iterable (source Storefront, CartID, Email and At set); it answers only
	// once the cart is durably kept. Without it, posted carts are refused with 503.
	Cart func(ctx context.Context, acct accounts.Account, c domain.Cart) error
}

// KeptView is a page view as Keep receives it.
type KeptView struct {
	Visitor, URL, Referrer, Title, Email string
	At                                   time.Time
}

// Tracker serves POST /track/{account}.
type Tracker struct {
	d      TrackerDeps
	orders *history.Repo
}

// NewTracker checks deps.
func NewTracker(d TrackerDeps) (*Tracker, error) {
	if d.Store == nil || d.Queue == nil || d.Accounts == nil {
		return nil, errors.New("iterable tracker: store, queue and accounts are required")
	}
	if d.Keys == nil {
		d.Keys = accountkeys.None{}
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
	return &Tracker{d: d, orders: history.New(d.Store)}, nil
}

// pageView is what is kept of a view until it is sent.
type pageView struct {
	Visitor  string    `json:"visitor"`
	URL      string    `json:"url"`
	Title    string    `json:"title,omitempty"`
	Referrer string    `json:"referrer,omitempty"`
	At       time.Time `json:"at,omitzero"`
}

// trackRequest is what the snippet posts: a page view, and on some pages who the shopper is.
// A request with an order claim and no url only claims.
type trackRequest struct {
	Visitor  string `json:"visitor"`
	URL      string `json:"url"`
	Title    string `json:"title"`
	Referrer string `json:"referrer"`
	// Identity is a token the merchant's server signed (shared/visitortoken).
	Identity string `json:"identity"`
	// Order is the order confirmation page's claim.
	Order *orderClaim `json:"order"`
	// Email is what older snippets sent to identify a browser; it is refused.
	Email string `json:"email"`
	// Cart is the shopper's cart as the page reports it (carts.go); decoded into cart.
	Cart json.RawMessage `json:"cart"`
	cart *domain.Cart
}

type orderClaim struct {
	ID    string `json:"id"`
	Email string `json:"email"`
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

// validVisitor accepts the snippet's random ids: 16 to 64 letters, digits, - or _. Anyone who
// knows a browser's id can post as that browser, so ids short enough to guess are refused.
func validVisitor(v string) bool {
	if len(v) < 16 || len(v) > 64 {
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
// a 4xx; a request for an account that does not exist or does not forward to Iterable is
// answered 204 without writing anything, as the snippet cannot act on the difference.
func (t *Tracker) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	path := req.RawPath
	if path == "" {
		path = req.RequestContext.HTTP.Path
	}
	if path == ScriptPath {
		return script(req.RequestContext.HTTP.Method)
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
	r, resp, ok := readTrackRequest(req)
	if !ok {
		return resp
	}
	acct, err := t.d.Accounts.Get(ctx, account)
	if errors.Is(err, accounts.ErrNotFound) || (err == nil && !Enabled(acct) && t.d.Keep == nil) {
		return trackResponse(http.StatusNoContent, "")
	}
	if err != nil {
		log.Error("read account", slog.Any("error", err))
		return trackResponse(http.StatusServiceUnavailable, "try again later")
	}
	if resp, ok := checkPages(acct, r, header(req, "origin")); !ok {
		log.Warn("page view refused", slog.Int("status", resp.StatusCode), slog.String("reason", resp.Body))
		return resp
	}
	if resp, ok := t.reserve(ctx, account, req.RequestContext.HTTP.SourceIP); !ok {
		return resp
	}
	now := t.d.Clock.Now()
	var email string
	if r.Identity != "" {
		if email, resp, ok = t.identity(ctx, log, account, r.Identity, now); !ok {
			return resp
		}
	}
	if email == "" && r.Order != nil {
		if email, err = t.claim(ctx, log, account, r.Visitor, *r.Order, now, true); err != nil {
			log.Error("order claim not recorded", slog.Any("error", err))
			return trackResponse(http.StatusServiceUnavailable, "try again later")
		}
	}
	var pv *pageView
	if r.URL != "" {
		pv = &pageView{Visitor: r.Visitor, URL: r.URL, Title: r.Title, Referrer: r.Referrer, At: now}
	}
	if Enabled(acct) {
		if email, err = t.record(ctx, log, account, r.Visitor, email, pv, now); err != nil {
			log.Error("page view not recorded", slog.Any("error", err))
			return trackResponse(http.StatusServiceUnavailable, "try again later")
		}
		if r.cart != nil {
			if err := t.keepCart(ctx, log, acct, r.Visitor, email, *r.cart, now); err != nil {
				log.Error("cart not recorded", slog.Any("error", err))
				return trackResponse(http.StatusServiceUnavailable, "try again later")
			}
		}
	}
	if t.d.Keep != nil && pv != nil {
		if err := t.d.Keep(ctx, acct, KeptView{Visitor: pv.Visitor, URL: pv.URL, Referrer: pv.Referrer, Title: pv.Title, Email: email, At: pv.At}); err != nil {
			log.Error("page view not kept", slog.Any("error", err))
			return trackResponse(http.StatusServiceUnavailable, "try again later")
		}
	}
	return trackResponse(http.StatusNoContent, "")
}

// script serves the snippet.
func script(method string) events.APIGatewayV2HTTPResponse {
	if method != http.MethodGet && method != http.MethodHead {
		return trackResponse(http.StatusMethodNotAllowed, "use GET")
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Body: snippet, Headers: map[string]string{
		"content-type": "text/javascript; charset=utf-8", "cache-control": "public, max-age=3600",
		"x-content-type-options": "nosniff", "access-control-allow-origin": "*"}}
}

// readTrackRequest reads and checks the body; what it refuses is answered 4xx.
func readTrackRequest(req events.APIGatewayV2HTTPRequest) (trackRequest, events.APIGatewayV2HTTPResponse, bool) {
	var r trackRequest
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		if base64.StdEncoding.DecodedLen(len(req.Body)) > MaxTrackBodyBytes+3 {
			return r, trackResponse(http.StatusRequestEntityTooLarge, "a page view is at most 8 KB"), false
		}
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return r, trackResponse(http.StatusBadRequest, "the body is not valid base64"), false
		}
		body = b
	}
	if len(body) > MaxTrackBodyBytes {
		return r, trackResponse(http.StatusRequestEntityTooLarge, "a page view is at most 8 KB"), false
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, trackResponse(http.StatusBadRequest, "the body is not a page view (JSON with visitor and url)"), false
	}
	bad := func(msg string) (trackRequest, events.APIGatewayV2HTTPResponse, bool) {
		return r, trackResponse(http.StatusBadRequest, msg), false
	}
	switch {
	case r.Email != "":
		return bad("a page view cannot name the shopper by address: identify the browser with a token your server signs (identity), or claim the order on its confirmation page; see cartrelay's docs/iterable.md")
	case !validVisitor(r.Visitor):
		return bad("a page view needs a visitor id (16-64 letters, digits, - or _), as the snippet makes")
	case r.URL == "" && r.Order == nil && (len(r.Cart) == 0 || string(r.Cart) == "null"):
		return bad("a page view needs the page's url")
	case len(r.URL) > maxTrackURLLen:
		return bad("the url is longer than 2048 characters")
	}
	if r.Order != nil {
		id := strings.TrimSpace(r.Order.ID)
		email, err := domain.NormalizeEmail(r.Order.Email)
		if id == "" || len(id) > maxOrderIDLen || err != nil {
			return bad("an order claim needs the order's id and the buyer's email address")
		}
		r.Order.ID, r.Order.Email = id, email
	}
	if len(r.Cart) > 0 && string(r.Cart) != "null" {
		c, err := DecodeCart(r.Cart)
		if err != nil {
			return bad(err.Error())
		}
		r.cart = &c
	}
	r.Title = clipText(strings.TrimSpace(r.Title), maxTitleLen)
	if u, err := url.Parse(r.Referrer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || len(r.Referrer) > maxTrackURLLen {
		r.Referrer = ""
	}
	return r, events.APIGatewayV2HTTPResponse{}, true
}

// checkPages refuses a page, or a page that posts, off the account's allowed_domains.
func checkPages(acct accounts.Account, r trackRequest, origin string) (events.APIGatewayV2HTTPResponse, bool) {
	hosts, err := sitehosts.Parse(acct.AllowedDomains)
	if err != nil {
		return trackResponse(http.StatusForbidden, err.Error()), false
	}
	if hosts.Empty() {
		return trackResponse(http.StatusForbidden, "this account accepts no page views until its allowed_domains lists the store's own domains"), false
	}
	if r.URL != "" {
		if err := hosts.URL(r.URL); err != nil {
			return trackResponse(http.StatusForbidden, "the page is not on this store's domains: "+err.Error()), false
		}
	}
	if r.cart != nil {
		if err := checkCartLinks(hosts, *r.cart); err != nil {
			return trackResponse(http.StatusForbidden, err.Error()), false
		}
	}
	// Browsers name the page's origin on a cross-site POST; a page elsewhere cannot post as
	// one of the store's.
	if origin != "" && origin != "null" {
		if err := hosts.URL(origin); err != nil {
			return trackResponse(http.StatusForbidden, "the page posting is not on this store's domains: "+err.Error()), false
		}
	}
	return events.APIGatewayV2HTTPResponse{}, true
}

// reserve takes a slot of the client IP's rate window for the account.
func (t *Tracker) reserve(ctx context.Context, account, ip string) (events.APIGatewayV2HTTPResponse, bool) {
	sum := sha256.Sum256([]byte(account + "|" + ip))
	lim, err := ratelimit.NewShared(t.d.Store, t.d.Clock, "A#"+account+"#R#track:"+hex.EncodeToString(sum[:12]), t.d.PerIP)
	if err != nil {
		return trackResponse(http.StatusInternalServerError, "rate limit misconfigured"), false
	}
	wait, err := lim.Reserve(ctx)
	if err != nil {
		t.d.Log.Error("page view rate window", slog.String("account", account), slog.Any("error", err))
		return trackResponse(http.StatusServiceUnavailable, "try again later"), false
	}
	if wait > 0 {
		r := trackResponse(http.StatusTooManyRequests, "too many page views from this address")
		r.Headers["retry-after"] = fmt.Sprint(int(wait.Seconds()) + 1)
		return r, false
	}
	return events.APIGatewayV2HTTPResponse{}, true
}

// identity checks an identity token and returns the address it vouches for. A token that does
// not verify is answered 403 with why, for the developer who wired it: it reveals nothing
// about any shopper.
func (t *Tracker) identity(ctx context.Context, log *slog.Logger, account, token string, now time.Time) (string, events.APIGatewayV2HTTPResponse, bool) {
	k, err := t.d.Keys.Get(ctx, account, accountkeys.Tracking)
	if errors.Is(err, accountkeys.ErrNotFound) {
		return "", trackResponse(http.StatusForbidden, "this account has no tracking secret yet, so no identity token can be valid; "+
			"the operator makes and shows it with `cartrelay accounts tracking-secret "+account+"`"), false
	}
	if err != nil {
		log.Error("read the tracking secret", slog.Any("error", err))
		return "", trackResponse(http.StatusServiceUnavailable, "try again later"), false
	}
	addr, err := visitortoken.Verify(k.Value, token, now)
	if err == nil {
		addr, err = domain.NormalizeEmail(addr)
	}
	if err != nil {
		log.Warn("identity token refused", slog.Any("error", err))
		return "", trackResponse(http.StatusForbidden, "identity token refused: "+err.Error()), false
	}
	return addr, events.APIGatewayV2HTTPResponse{}, true
}

func visitorPK(account, visitor string) string { return "A#" + account + "#V#" + visitor }
func pendingPK(account, visitor string) string { return "A#" + account + "#PVV#" + visitor }
func claimPK(account, visitor string) string   { return "A#" + account + "#VC#" + visitor }
func claimedPK(account, orderKey string) string {
	return "A#" + account + "#OC#" + orderKey
}

// mentioning indexes an item that names email, so that an erasure of the address finds it
// (history.MentionGSI1).
func mentioning(it store.Item, account, email string) store.Item {
	it.GSI1PK, it.GSI1SK = history.MentionGSI1(account, email), it.PK+"|"+it.SK
	return it
}

// PageViewsPK holds a known contact's page views until they are sent.
func PageViewsPK(account, email string) string { return "A#" + account + "#PV#" + email }

type visitorDoc struct {
	Email string `json:"email"`
}

type claimDoc struct {
	Order   string    `json:"order"`
	Email   string    `json:"email"`
	Visitor string    `json:"visitor,omitempty"`
	At      time.Time `json:"at"`
}

// claim honours an order confirmation page's claim: the browser is the buyer's when cartrelay
// holds the order under that address, paid at most ClaimWindow ago, and no other browser
// claimed it first. An order not stored yet (its webhook may still be on its way) leaves the
// claim with the browser for claimRetryTTL, tried again with its next request when remember is
// set. Whatever the outcome, the answer is the same, so a claim cannot be used to learn who
// bought what; the log says why.
func (t *Tracker) claim(ctx context.Context, log *slog.Logger, account, visitor string, c orderClaim, now time.Time, remember bool) (string, error) {
	var found *domain.Order
	for _, src := range []domain.Source{domain.UltraCart, domain.ThriveCart} {
		o, err := t.orders.OrderByKey(ctx, account, domain.OrderKey(src, c.ID, ""))
		if err != nil {
			return "", err
		}
		if o != nil {
			found = o
			break
		}
	}
	if found == nil {
		if !remember {
			return "", nil
		}
		data, _ := json.Marshal(claimDoc{Order: c.ID, Email: c.Email, At: now})
		log.Info("order claim waits for its order")
		return "", t.d.Store.Write(ctx, store.PutItem(mentioning(store.Item{PK: claimPK(account, visitor), SK: "-", Data: data,
			ExpiresAt: now.Add(claimRetryTTL)}, account, c.Email), store.Always))
	}
	paid := found.PaidAt
	if paid.IsZero() {
		paid = found.CreatedAt
	}
	switch {
	case found.Email != c.Email:
		log.Warn("order claim refused: the address is not the order's")
		return "", nil
	case paid.IsZero() || now.Sub(paid) > ClaimWindow || paid.Sub(now) > time.Hour:
		log.Warn("order claim refused: the order was not paid within the claim window", slog.Time("paid_at", paid))
		return "", nil
	}
	data, _ := json.Marshal(claimDoc{Order: found.Key, Email: c.Email, Visitor: visitor, At: now})
	err := t.d.Store.Write(ctx, store.PutItem(mentioning(store.Item{PK: claimedPK(account, found.Key), SK: "-", Data: data,
		ExpiresAt: paid.Add(2 * ClaimWindow)}, account, c.Email), store.NotExists))
	if errors.Is(err, store.ErrConditionFailed) {
		it, err := t.d.Store.Get(ctx, claimedPK(account, found.Key), "-")
		if err != nil {
			return "", err
		}
		var first claimDoc
		if json.Unmarshal(it.Data, &first) != nil || first.Visitor != visitor {
			log.Warn("order claim refused: another browser claimed the order first")
			return "", nil
		}
	} else if err != nil {
		return "", err
	}
	log.Info("browser identified by its order claim")
	// A claim that waited is answered.
	return c.Email, t.d.Store.Write(ctx, store.DeleteKey(store.Key{PK: claimPK(account, visitor), SK: "-"}, store.Always))
}

// knownEmail is the address a browser was identified with before, or that its waiting order
// claim proves now (fresh).
func (t *Tracker) knownEmail(ctx context.Context, log *slog.Logger, account, visitor string, now time.Time) (email string, fresh bool, err error) {
	it, err := t.d.Store.Get(ctx, visitorPK(account, visitor), "-")
	switch {
	case err == nil:
		var d visitorDoc
		if json.Unmarshal(it.Data, &d) == nil && d.Email != "" {
			return d.Email, false, nil
		}
	case !errors.Is(err, store.ErrNotFound):
		return "", false, err
	}
	it, err = t.d.Store.Get(ctx, claimPK(account, visitor), "-")
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	var c claimDoc
	if json.Unmarshal(it.Data, &c) != nil {
		return "", false, nil
	}
	email, err = t.claim(ctx, log, account, visitor, orderClaim{ID: c.Order, Email: c.Email}, now, false)
	return email, email != "", err
}

// record keeps a page view (pv may be nil for a claim alone) and returns the address the
// browser is known by ("" when it is not). identified is the address the request proved;
// otherwise the browser's earlier identification, if any, is used.
func (t *Tracker) record(ctx context.Context, log *slog.Logger, account, visitor, identified string, pv *pageView, now time.Time) (string, error) {
	email, fresh := identified, identified != ""
	if email == "" {
		var err error
		if email, fresh, err = t.knownEmail(ctx, log, account, visitor, now); err != nil {
			return "", err
		}
	}
	if fresh {
		data, _ := json.Marshal(visitorDoc{Email: email})
		it := mentioning(store.Item{PK: visitorPK(account, visitor), SK: "-", Data: data, ExpiresAt: now.Add(visitorTTL)}, account, email)
		if err := t.d.Store.Write(ctx, store.PutItem(it, store.Always)); err != nil {
			return "", err
		}
	}
	var data []byte
	var sk string
	if pv != nil {
		data, _ = json.Marshal(pv)
		// The content hash tells apart two views of one browser in the same instant.
		sk = pv.At.UTC().Format("2006-01-02T15:04:05.000000000Z") + "#" + pv.Visitor + "#" + shortHash(string(data))[:8]
	}
	if email == "" {
		if pv == nil {
			return email, nil
		}
		// Unknown browser: kept until it is identified, or dropped after PageViewTTL; a
		// browser nobody vouched for cannot fill the table.
		waiting, err := t.d.Store.Query(ctx, store.Query{PK: pendingPK(account, visitor), Limit: MaxAnonymousViews})
		if err != nil {
			return "", err
		}
		if len(waiting.Items) >= MaxAnonymousViews {
			log.Info("page view dropped: the unidentified browser has the most views it may keep", slog.Int("limit", MaxAnonymousViews))
			return email, nil
		}
		return "", t.d.Store.Write(ctx, store.PutItem(store.Item{PK: pendingPK(account, visitor), SK: sk, Data: data,
			ExpiresAt: now.Add(PageViewTTL)}, store.Always))
	}
	var ws []store.Write
	if pv != nil {
		ws = append(ws, store.PutItem(store.Item{PK: PageViewsPK(account, email), SK: sk, Data: data, ExpiresAt: now.Add(PageViewTTL)}, store.Always))
	}
	// Identified now or before: views the browser made while unknown join the contact.
	earlier, err := store.QueryAll(ctx, t.d.Store, store.Query{PK: pendingPK(account, visitor)})
	if err != nil {
		return "", err
	}
	for _, it := range earlier {
		if len(ws)+2 > store.MaxTransactWrites {
			break // the rest move with the browser's next view
		}
		moved := it
		moved.PK = PageViewsPK(account, email)
		ws = append(ws, store.PutItem(moved, store.Always), store.DeleteKey(store.Key{PK: it.PK, SK: it.SK}, store.Always))
		if sk == "" {
			sk = it.SK
		}
	}
	if len(ws) == 0 {
		return email, nil
	}
	if err := t.d.Store.Transact(ctx, ws); err != nil {
		return "", err
	}
	id := shortHash(account + "|" + email + "|" + sk)
	f := domain.Fact{ID: account + ":" + string(KindPageViews) + ":" + id, Account: account, Kind: KindPageViews, Email: email, OccurredAt: now}
	body, _ := json.Marshal(f)
	return email, t.d.Queue.Send(ctx, queueName, []queue.Message{{Body: string(body), GroupID: account + "|" + email, DedupID: f.ID,
		Attributes: map[string]string{"account": account, "fact_kind": string(KindPageViews)}}})
}

// header reads a request header; API Gateway v2 lower-cases header names.
func header(req events.APIGatewayV2HTTPRequest, name string) string {
	if v, ok := req.Headers[name]; ok {
		return v
	}
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// clipText cuts s to at most n bytes without splitting a character.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
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
