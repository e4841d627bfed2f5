package iterable

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/outbound"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/reviews"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/timers"
)

// Follow-up fact kinds. They are this destination's own: its timers put them on the iterable
// queue when a wait is over, under the contact's message group, so they reach Deliver through
// the forwarder like any fact (idempotent by id, logged, retried, parked).
const (
	KindCartReminder  domain.FactKind = "IterableCartReminder"
	KindReviewRequest domain.FactKind = "IterableReviewRequest"
)

// Timer kinds (shared/timers).
const (
	TimerCart   = "iterable-cart"
	TimerReview = "iterable-review"
)

// Deps are what the destination runs over.
type Deps struct {
	Store store.Store
	Clock clock.Clock
	Log   *slog.Logger
	// HTTP defaults to a client with a 15 s timeout.
	HTTP *http.Client
	// PublicBaseURL is where GET /review/{token} is served, for review links.
	PublicBaseURL string
	// Limits override DefaultLimits per class (tests run them scaled down).
	Limits map[string]ratelimit.Limit
	// MaxInlineWait is the longest a delivery sleeps for a rate-window slot; longer waits
	// go back to the forwarder as a retry delay. Default 5 s.
	MaxInlineWait time.Duration
	// Sleep waits for a slot; tests on a fake clock replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Keys makes and reads each account's review key, which signs its review links.
	Keys ReviewKeys
}

// ReviewKeys makes an account's review key the first time a link is signed
// (accountkeys.Repo does).
type ReviewKeys interface {
	Ensure(ctx context.Context, account string, name accountkeys.Name) (accountkeys.Key, error)
}

// Destination delivers facts to Iterable. It implements deliver.Destination.
type Destination struct {
	store         store.Store
	clk           clock.Clock
	log           *slog.Logger
	http          *http.Client
	publicBase    string
	limits        map[string]ratelimit.Limit
	maxInlineWait time.Duration
	sleep         func(ctx context.Context, d time.Duration) error
	timers        *timers.Repo
	history       *history.Repo
	asked         reviews.Asked
	keys          ReviewKeys
}

var _ deliver.Destination = (*Destination)(nil)

// New checks deps and returns the destination.
func New(d Deps) (*Destination, error) {
	if d.Store == nil {
		return nil, errors.New("iterable: a store is required (timers, rate windows, history)")
	}
	if d.Keys == nil {
		return nil, errors.New("iterable: review keys are required (they sign review links)")
	}
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	// The API key rides in a header that Go keeps on a redirect to another host.
	d.HTTP = outbound.Guard(d.HTTP, defaultHTTPTimeout)
	if d.MaxInlineWait <= 0 {
		d.MaxInlineWait = defaultMaxInlineWait
	}
	if d.Sleep == nil {
		d.Sleep = clock.Sleep
	}
	limits := DefaultLimits()
	for k, v := range d.Limits {
		if err := v.Valid(); err != nil {
			return nil, fmt.Errorf("iterable: limit of %s: %w", k, err)
		}
		limits[k] = v
	}
	base := strings.TrimRight(d.PublicBaseURL, "/")
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	return &Destination{store: d.Store, clk: d.Clock, log: d.Log, http: d.HTTP, publicBase: base, limits: limits,
		maxInlineWait: d.MaxInlineWait, sleep: d.Sleep, timers: timers.New(d.Store, d.Clock, timers.Options{}),
		history: history.New(d.Store), asked: reviews.NewAsked(d.Store), keys: d.Keys}, nil
}

// Name implements deliver.Destination.
func (d *Destination) Name() string { return Name }

// Deliver implements deliver.Destination. Every exchange it made is in the outcome, on errors
// too; with no API key it records the requests it would send and sends nothing.
func (d *Destination) Deliver(ctx context.Context, acct accounts.Account, f domain.Fact) (deliver.Outcome, error) {
	log := d.log.With(slog.String("account", acct.ID), slog.String("fact_id", f.ID), slog.String("destination", d.Name()))
	s, err := ParseSettings(acct)
	if err != nil {
		log.Warn("iterable settings are invalid", slog.Any("error", err))
		return deliver.Outcome{Status: history.DeliverySkipped, Note: err.Error()}, deliver.Permanent(err)
	}
	sess := &session{d: d, account: acct.ID, base: s.BaseURL, key: s.APIKey.Reveal(), dry: s.DryRun(), log: log}
	out, err := d.dispatch(ctx, sess, acct, s, f)
	out.Exchanges = sess.ex
	if out.Status == "" {
		out.Status = history.DeliverySent
		if sess.dry {
			out.Status = history.DeliveryDryRun
			out.Note = strings.TrimSpace("no Iterable API key: recorded " + strings.Join(sess.calls, ", ") + " without sending. " + out.Note)
		}
	}
	if err == nil {
		log.Debug("iterable delivery", slog.String("status", out.Status), slog.Int("requests", len(sess.ex)), slog.String("note", out.Note))
	}
	return out, err
}

func skipped(note string) (deliver.Outcome, error) {
	return deliver.Outcome{Status: history.DeliverySkipped, Note: note}, nil
}

// profileKinds are the facts that only update what Iterable knows; they alone are sent for
// history (forward_since), whatever the account's history mode, because Iterable's purchase and
// custom events start journeys and a backfill must not.
func profileKind(k domain.FactKind) bool {
	return k == domain.FactContactChanged || k == domain.FactEmailChanged
}

func (d *Destination) dispatch(ctx context.Context, sess *session, acct accounts.Account, s Settings, f domain.Fact) (deliver.Outcome, error) {
	if f.Historical && !profileKind(f.Kind) {
		return skipped(fmt.Sprintf("%s happened before forward_since: for history Iterable only receives profile updates, so no purchase, cart, shipment or review campaign fires on a backfill", f.Kind))
	}
	if f.Order != nil {
		o := *f.Order
		var err error
		if o.Items, err = d.catalogImages(ctx, acct.ID, o.Source, s, o.Items); err != nil {
			return deliver.Outcome{}, err
		}
		f.Order = &o
	}
	switch f.Kind {
	case domain.FactContactChanged:
		return d.contactChanged(ctx, sess, acct, s, f)
	case domain.FactEmailChanged:
		return d.emailChanged(ctx, sess, f)
	case domain.FactOrderPlaced:
		return d.orderPlaced(ctx, sess, acct, s, f)
	case domain.FactOrderRefunded:
		return d.orderRefunded(ctx, sess, acct, s, f)
	case domain.FactOrderShipped:
		return d.orderShipped(ctx, sess, acct, s, f)
	case domain.FactOrderOutForDelivery, domain.FactOrderDelivered:
		return d.orderDelivery(ctx, sess, acct, s, f)
	case domain.FactOrderPaymentFailed:
		return d.event(ctx, sess, s, f, f.Order != nil, func() Track { return PaymentFailedEvent(f, s) })
	case domain.FactOrderChargedBack:
		return d.takeBack(ctx, sess, acct, s, f, f.Chargeback != nil, func(ltv *domain.Money) Track { return ChargebackEvent(f, ltv) })
	case domain.FactOrderReversed:
		return d.takeBack(ctx, sess, acct, s, f, f.Reversal != nil, func(ltv *domain.Money) Track { return ReversalEvent(f, ltv) })
	case domain.FactSubscriptionChanged:
		return d.subscriptionChanged(ctx, sess, s, f)
	case domain.FactRebillScheduled:
		return d.event(ctx, sess, s, f, f.Sub != nil, func() Track { return RenewalScheduledEvent(f) })
	case domain.FactCartAbandoned:
		return d.cartAbandoned(ctx, sess, acct, s, f)
	case domain.FactCartUpdated:
		return d.cartUpdated(ctx, sess, acct, s, f)
	case KindCartReminder:
		return d.cartReminder(ctx, sess, acct, s, f)
	case KindReviewRequest:
		return d.reviewRequest(ctx, sess, acct, s, f)
	case KindPageViews:
		return d.pageViews(ctx, sess, acct, s, f)
	case domain.FactItemChanged:
		return skipped("catalogue changes are not sent to Iterable; purchases and carts carry their items")
	case domain.FactContactErased:
		return d.forget(ctx, sess, f)
	}
	return skipped(fmt.Sprintf("Iterable has nothing to do with %s facts", f.Kind))
}

func (d *Destination) contactChanged(ctx context.Context, sess *session, acct accounts.Account, s Settings, f domain.Fact) (deliver.Outcome, error) {
	if f.Contact == nil || f.Contact.Email == "" {
		return skipped("ContactChanged without a contact")
	}
	c := *f.Contact
	if err := sess.post(ctx, PathUsersUpdate, ProfileUpdate(c), nil); err != nil {
		return deliver.Outcome{}, err
	}
	note, err := d.syncLists(ctx, sess, acct, s, c)
	return deliver.Outcome{Note: note}, err
}

func (d *Destination) emailChanged(ctx context.Context, sess *session, f domain.Fact) (deliver.Outcome, error) {
	if f.OldEmail == "" || f.Email == "" {
		return skipped("EmailChanged without both emails")
	}
	err := sess.post(ctx, PathUsersUpdateEmail, EmailChange(f), nil)
	var apiErr *APIError
	if errors.As(err, &apiErr) && (apiErr.Code == "UnknownEmailError" || apiErr.Status == http.StatusNotFound) {
		// Iterable never had the old address: there is nothing to move, and the next profile
		// update creates the new one.
		return deliver.Outcome{Note: "Iterable does not know " + f.OldEmail + "; the new address gets its profile from the next update"}, nil
	}
	return deliver.Outcome{}, err
}

// forget asks Iterable to forget each address of an erased contact (users/forget): Iterable
// deletes what it holds about the user and takes no more data about the address until the
// merchant unforgets it. An address Iterable never knew is forgotten all the same, so that
// nothing about it is collected later either.
func (d *Destination) forget(ctx context.Context, sess *session, f domain.Fact) (deliver.Outcome, error) {
	if f.Erasure == nil || len(f.Erasure.Emails) == 0 {
		return skipped("ContactErased without the addresses to forget")
	}
	for _, e := range f.Erasure.Emails {
		if err := sess.post(ctx, PathUsersForget, UserRequest{Email: e}, nil); err != nil {
			return deliver.Outcome{}, err
		}
	}
	return deliver.Outcome{Note: fmt.Sprintf("users/forget for %d address(es) of the erased contact", len(f.Erasure.Emails))}, nil
}

func (d *Destination) orderPlaced(ctx context.Context, sess *session, acct accounts.Account, s Settings, f domain.Fact) (deliver.Outcome, error) {
	if f.Order == nil {
		return skipped("OrderPlaced without an order")
	}
	if !s.RegularEvents {
		return skipped("regular events are off (iterable.disable_regular_events)")
	}
	p := Purchase(f.Email, *f.Order, s, f.OccurredAt)
	if err := sess.post(ctx, PathTrackPurchase, p, nil); err != nil {
		return deliver.Outcome{}, err
	}
	done := map[string]string{"purchase_id": p.ID}
	if ev, ok := RenewalEvent(f); ok {
		if err := sess.post(ctx, PathEventsTrack, ev, nil); err != nil {
			return deliver.Outcome{}, err
		}
		done["renewal_event_id"] = ev.ID
	}
	note, err := d.enrolLists(ctx, sess, acct, s, f.Email, ListPurchase)
	return deliver.Outcome{Done: done, Note: note}, err
}

func (d *Destination) orderRefunded(ctx context.Context, sess *session, acct accounts.Account, s Settings, f domain.Fact) (deliver.Outcome, error) {
	return d.takeBack(ctx, sess, acct, s, f, f.Refund != nil, func(ltv *domain.Money) Track { return RefundEvent(f, ltv) })
}

// takeBack sends the event of a fact that takes revenue back from an order (a refund, a
// chargeback or its reversal, an order reversed), carrying the contact's lifetime value as it is
// now; the profile's own ltv follows with the ContactChanged the same change produced. ok says
// the fact carries its payload.
func (d *Destination) takeBack(ctx context.Context, sess *session, acct accounts.Account, s Settings, f domain.Fact, ok bool,
	event func(ltv *domain.Money) Track) (deliver.Outcome, error) {
	if f.Order == nil || !ok {
		return skipped(fmt.Sprintf("%s without its order or payload", f.Kind))
	}
	if !s.RegularEvents {
		return skipped("regular events are off (iterable.disable_regular_events)")
	}
	var ltv *domain.Money
	if st, err := d.contact(ctx, acct.ID, f.Email); err != nil {
		return deliver.Outcome{}, err
	} else if st.ProfileVersion > 0 {
		ltv = &st.Profile.LTV
	}
	ev := event(ltv)
	if err := sess.post(ctx, PathEventsTrack, ev, nil); err != nil {
		return deliver.Outcome{}, err
	}
	return deliver.Outcome{Done: map[string]string{"event_id": ev.ID}}, nil
}

// event sends one custom event of a fact that carries what it needs (ok).
func (d *Destination) event(ctx context.Context, sess *session, s Settings, f domain.Fact, ok bool, ev func() Track) (deliver.Outcome, error) {
	if !ok {
		return skipped(fmt.Sprintf("%s without its payload", f.Kind))
	}
	if !s.RegularEvents {
		return skipped("regular events are off (iterable.disable_regular_events)")
	}
	t := ev()
	if err := sess.post(ctx, PathEventsTrack, t, nil); err != nil {
		return deliver.Outcome{}, err
	}
	return deliver.Outcome{Done: map[string]string{"event_id": t.ID}}, nil
}

func (d *Destination) subscriptionChanged(ctx context.Context, sess *session, s Settings, f domain.Fact) (deliver.Outcome, error) {
	if f.Sub == nil {
		return skipped("SubscriptionChanged without a subscription")
	}
	if !s.RegularEvents {
		return skipped("regular events are off (iterable.disable_regular_events)")
	}
	ev, ok := SubscriptionEvent(f)
	if !ok {
		return skipped(fmt.Sprintf("a subscription moving from %q to %q sends no event", f.FromStatus, f.Sub.Status))
	}
	if err := sess.post(ctx, PathEventsTrack, ev, nil); err != nil {
		return deliver.Outcome{}, err
	}
	return deliver.Outcome{Done: map[string]string{"event_id": ev.ID}}, nil
}

// catalogImages gives lines that carry no thumbnails those of their stored catalogue item, when
// it shows the same image: UltraCart's order items name no thumbnails, its catalogue items do.
// Only when a thumbnail size is configured; the lines passed in are not changed.
func (d *Destination) catalogImages(ctx context.Context, account string, src domain.Source, s Settings, lines []domain.LineItem) ([]domain.LineItem, error) {
	if s.ThumbWidth <= 0 || d.history == nil {
		return lines, nil
	}
	var out []domain.LineItem
	for i, li := range lines {
		if len(li.Thumbnails) > 0 || li.SKU == "" {
			continue
		}
		it, err := d.history.Item(ctx, account, src, li.SKU)
		if err != nil {
			return nil, fmt.Errorf("read catalogue item %s for its thumbnails: %w", li.SKU, err)
		}
		if it == nil || len(it.Thumbnails) == 0 || (li.ImageURL != "" && li.ImageURL != it.ImageURL) {
			continue
		}
		if out == nil {
			out = slices.Clone(lines)
		}
		out[i].Thumbnails = it.Thumbnails
		out[i].ImageURL = it.ImageURL
	}
	if out == nil {
		return lines, nil
	}
	return out, nil
}

// contact reads the current state of a contact, following an email change, with the records an
// unfinished change has not moved yet.
func (d *Destination) contact(ctx context.Context, account, email string) (*history.ContactState, error) {
	return d.history.Current(ctx, account, email)
}

// followUpID is the id of a follow-up fact: the account, the kind and a hash of what it follows,
// so the same wait always produces the same id (and the forwarder's idempotency holds).
func followUpID(account string, kind domain.FactKind, of string) string {
	sum := sha256.Sum256([]byte(of))
	return account + ":" + string(kind) + ":" + fmt.Sprintf("%x", sum[:12])
}

// schedule puts a follow-up fact on a timer. Its message joins the contact's FIFO group, the
// same group ingest uses, so it is delivered in order with the contact's other facts.
func (d *Destination) schedule(ctx context.Context, kind, key string, due time.Time, seq int64, f domain.Fact, newer bool) (bool, error) {
	body, err := json.Marshal(f)
	if err != nil {
		return false, fmt.Errorf("encode follow-up %s: %w", f.ID, err)
	}
	t := timers.Timer{Account: f.Account, Kind: kind, Key: key, Due: due, Seq: seq, Queue: queueName,
		Message: queue.Message{Body: string(body), GroupID: f.Account + "|" + f.Email, DedupID: f.ID,
			Attributes: map[string]string{"account": f.Account, "fact_kind": string(f.Kind)}}}
	if newer {
		return d.timers.PutNewer(ctx, t)
	}
	return d.timers.Put(ctx, t)
}

func (d *Destination) cartAbandoned(ctx context.Context, sess *session, acct accounts.Account, s Settings, f domain.Fact) (deliver.Outcome, error) {
	if f.Cart == nil {
		return skipped("CartAbandoned without a cart")
	}
	if !s.ReturnCartEvents {
		return skipped("return cart events are off (iterable.disable_return_cart_events)")
	}
	c := *f.Cart
	if err := sess.post(ctx, PathUpdateCart, CartUpdate(f.Email, c, s), nil); err != nil {
		return deliver.Outcome{}, err
	}
	at := c.At
	if at.IsZero() {
		at = f.OccurredAt
	}
	due := at.Add(s.CartWait())
	follow := domain.Fact{ID: followUpID(acct.ID, KindCartReminder, f.ID), Account: acct.ID, Kind: KindCartReminder,
		Email: f.Email, OccurredAt: due, Cart: &c}
	// One reminder waits per contact: a newer cart replaces an older one's.
	written, err := d.schedule(ctx, TimerCart, f.Email, due, at.UnixNano(), follow, true)
	if err != nil {
		return deliver.Outcome{}, err
	}
	note := fmt.Sprintf("cartAbandoned due at %s unless an order follows", due.UTC().Format(time.RFC3339))
	if !written {
		note = "a newer cart's reminder is already waiting"
	}
	lists, err := d.enrolLists(ctx, sess, acct, s, f.Email, ListCart)
	if err != nil {
		return deliver.Outcome{}, err
	}
	if lists != "" {
		note += "; " + lists
	}
	return deliver.Outcome{Note: note, Done: map[string]string{"reminder_fact_id": follow.ID}}, nil
}

// orderFollowed reports whether the contact placed an order at or after t.
func orderFollowed(st *history.ContactState, t time.Time) (string, bool) {
	for _, o := range st.OrderList() {
		if o.Test || o.Status == domain.OrderRejected || o.Status == domain.OrderDeleted {
			continue
		}
		if at := orderTime(o, o.SourceUpdatedAt); !at.IsZero() && !at.Before(t) {
			return o.OrderID, true
		}
	}
	return "", false
}

func (d *Destination) cartReminder(ctx context.Context, sess *session, acct accounts.Account, s Settings, f domain.Fact) (deliver.Outcome, error) {
	if f.Cart == nil {
		return skipped("cart reminder without a cart")
	}
	if !s.ReturnCartEvents {
		return skipped("return cart events are off (iterable.disable_return_cart_events)")
	}
	st, err := d.contact(ctx, acct.ID, f.Email)
	if err != nil {
		return deliver.Outcome{}, err
	}
	if id, ok := orderFollowed(st, f.Cart.At); ok {
		return skipped("order " + id + " followed the cart; no cartAbandoned event")
	}
	ev := CartAbandonedEvent(f.ID, st.Email, *f.Cart, s, d.clk.Now())
	if err := sess.post(ctx, PathEventsTrack, ev, nil); err != nil {
		return deliver.Outcome{}, err
	}
	return deliver.Outcome{Done: map[string]string{"event_id": ev.ID}}, nil
}

func (d *Destination) orderShipped(ctx context.Context, sess *session, acct accounts.Account, s Settings, f domain.Fact) (deliver.Outcome, error) {
	if f.Order == nil {
		return skipped("OrderShipped without an order")
	}
	if !s.RegularEvents {
		return skipped("regular events are off (iterable.disable_regular_events)")
	}
	ev := ShippedEvent(f, s)
	if err := sess.post(ctx, PathEventsTrack, ev, nil); err != nil {
		return deliver.Outcome{}, err
	}
	out := deliver.Outcome{Done: map[string]string{"event_id": ev.ID}}
	if s.ReviewAfter != ReviewAfterShipment {
		return out, nil
	}
	return d.startReviewWait(ctx, acct, s, f, out)
}

// orderDelivery sends orderOutForDelivery or orderDelivered; a delivery starts the review wait
// when the account waits from delivery (iterable.review_after).
func (d *Destination) orderDelivery(ctx context.Context, sess *session, acct accounts.Account, s Settings, f domain.Fact) (deliver.Outcome, error) {
	if f.Order == nil {
		return skipped(fmt.Sprintf("%s without an order", f.Kind))
	}
	if !s.RegularEvents {
		return skipped("regular events are off (iterable.disable_regular_events)")
	}
	ev := DeliveryEvent(f, s)
	if err := sess.post(ctx, PathEventsTrack, ev, nil); err != nil {
		return deliver.Outcome{}, err
	}
	out := deliver.Outcome{Done: map[string]string{"event_id": ev.ID}}
	if f.Kind != domain.FactOrderDelivered || s.ReviewAfter != ReviewAfterDelivery {
		return out, nil
	}
	return d.startReviewWait(ctx, acct, s, f, out)
}

// startReviewWait puts the order's review request on a timer, review_wait after the fact (the
// first shipment or the delivery, as the account chose). One request per order, however many
// parcels it ships in: the first fact starts it.
func (d *Destination) startReviewWait(ctx context.Context, acct accounts.Account, s Settings, f domain.Fact, out deliver.Outcome) (deliver.Outcome, error) {
	if s.ReviewURLTemplate == "" {
		out.Note = "no review request: iterable.review_url_template is not set"
		return out, nil
	}
	at := f.OccurredAt
	if at.IsZero() {
		at = d.clk.Now()
	}
	due := at.Add(s.ReviewWait)
	o := *f.Order
	follow := domain.Fact{ID: followUpID(acct.ID, KindReviewRequest, o.Key), Account: acct.ID, Kind: KindReviewRequest,
		Email: f.Email, OccurredAt: due, Order: &o}
	written, err := d.schedule(ctx, TimerReview, o.Key, due, 0, follow, false)
	if err != nil {
		return deliver.Outcome{}, err
	}
	if written {
		out.Note = "reviewRequest due at " + due.UTC().Format(time.RFC3339)
	}
	return out, nil
}

// reviewKey is the signing key: the account's review key, made when its first link is
// signed. A dry run makes none; its links, only ever recorded, are signed with a key nobody
// verifies.
func (d *Destination) reviewKey(ctx context.Context, acct accounts.Account, dry bool) ([]byte, error) {
	if dry {
		sum := sha256.Sum256([]byte("dry run " + acct.ID))
		return sum[:], nil
	}
	k, err := d.keys.Ensure(ctx, acct.ID, accountkeys.Review)
	if err != nil {
		return nil, fmt.Errorf("review key: %w", err)
	}
	return reviews.SigningKey(k), nil
}

func (d *Destination) reviewRequest(ctx context.Context, sess *session, acct accounts.Account, s Settings, f domain.Fact) (deliver.Outcome, error) {
	if f.Order == nil {
		return skipped("review request without an order")
	}
	if !s.RegularEvents || s.ReviewURLTemplate == "" {
		return skipped("review requests are off (regular events off or no iterable.review_url_template)")
	}
	st, err := d.contact(ctx, acct.ID, f.Email)
	if err != nil {
		return deliver.Outcome{}, err
	}
	o := *f.Order
	if cur, ok := st.Orders[o.Key]; ok {
		// The order as it is now: a refund since the shipment takes its lines out.
		o = cur
	}
	if o.Status == domain.OrderRejected || o.Status == domain.OrderDeleted {
		return skipped("order " + o.OrderID + " is no longer placed; no review request")
	}
	if o.Items, err = d.catalogImages(ctx, acct.ID, o.Source, s, o.Items); err != nil {
		return deliver.Outcome{}, err
	}
	if c, err := o.Refunded.Cmp(o.Total); err == nil && o.Refunded.Minor > 0 && c >= 0 {
		return skipped("order " + o.OrderID + " was refunded in full; no review request")
	}
	key, err := d.reviewKey(ctx, acct, sess.dry)
	if err != nil {
		// Reading or making the key can fail for a while (the table, KMS); retried.
		return deliver.Outcome{}, err
	}
	now := d.clk.Now()
	expires := now.Add(s.ReviewLinkTTL)
	var links []ReviewLink
	var seen []string
	for _, li := range o.Items {
		if li.SKU == "" || slices.Contains(seen, li.SKU) || (li.Quantity > 0 && li.QtyRefunded >= li.Quantity) {
			continue
		}
		seen = append(seen, li.SKU)
		var fresh bool
		if sess.dry {
			// A dry run remembers nothing, so the first live request still asks.
			asked, err := d.asked.WasAsked(ctx, acct.ID, st.Email, li.SKU)
			if err != nil {
				return deliver.Outcome{}, err
			}
			fresh = !asked
		} else if fresh, err = d.asked.Claim(ctx, acct.ID, st.Email, li.SKU, f.ID, now); err != nil {
			return deliver.Outcome{}, err
		}
		if !fresh {
			continue
		}
		tok, err := reviews.Sign(key, reviews.Claims{Account: acct.ID, OrderID: o.OrderID, SKU: li.SKU, Expires: expires})
		if err != nil {
			return deliver.Outcome{}, deliver.Permanent(err)
		}
		links = append(links, ReviewLink{SKU: li.SKU, Name: cmpOr(li.Name, li.SKU), ImageURL: LineImage(li, s),
			URL: li.URL, ReviewURL: d.publicBase + "/review/" + tok})
	}
	if len(links) == 0 {
		return skipped("every product of order " + o.OrderID + " was asked about before")
	}
	ev := ReviewEvent(f.ID, st.Email, o, links, expires, now)
	if err := sess.post(ctx, PathEventsTrack, ev, nil); err != nil {
		return deliver.Outcome{}, err
	}
	return deliver.Outcome{Done: map[string]any{"event_id": ev.ID, "skus": seenSKUs(links)}}, nil
}

func seenSKUs(links []ReviewLink) []string {
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = l.SKU
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
