package ontraport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/outbound"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Options configure the destination. Store is required; the rest have defaults.
type Options struct {
	Store store.Store
	Clock clock.Clock
	Log   *slog.Logger
	// HTTPClient sends the requests; its Timeout bounds each one. Default: 10 s timeout, so a
	// few calls fit in one forwarder invocation.
	HTTPClient *http.Client
	// Sleep waits for the request budget and between retries. Tests on a fake clock advance the
	// clock instead of sleeping.
	Sleep func(ctx context.Context, d time.Duration) error
	// MaxWait is the longest a delivery waits for the request budget before handing the fact
	// back to the queue with the wait as its retry hint. Default: 10 s.
	MaxWait time.Duration
	// Retries is how many times a safe request (a read, a merge by email, a tag change) is
	// repeated within one delivery after a server error or timeout. Default: 2; -1 for none.
	Retries int
}

// Destination delivers facts to ONTRAPORT (deliver.Destination).
type Destination struct {
	o Options
}

// New returns the ONTRAPORT destination.
func New(o Options) *Destination {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	// The API key rides in a header that Go keeps on a redirect to another host.
	o.HTTPClient = outbound.Guard(o.HTTPClient, 10*time.Second)
	if o.Sleep == nil {
		o.Sleep = clock.Sleep
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 10 * time.Second
	}
	switch {
	case o.Retries < 0:
		o.Retries = 0
	case o.Retries == 0:
		o.Retries = 2
	}
	return &Destination{o: o}
}

// Name implements deliver.Destination.
func (d *Destination) Name() string { return Name }

// LimiterPK is the table partition of an account's shared ONTRAPORT request budget.
func LimiterPK(account string) string { return "A#" + account + "#R#" + Name }

// result is what a handled fact produced.
type result struct {
	status string
	done   any
}

func sent(done any) result { return result{status: history.DeliverySent, done: done} }

// Deliver implements deliver.Destination. The exchanges made are returned with every outcome,
// failed ones included, so the delivery log shows what was sent and answered.
func (d *Destination) Deliver(ctx context.Context, acct accounts.Account, f domain.Fact) (deliver.Outcome, error) {
	log := d.o.Log.With(slog.String("account", acct.ID), slog.String("fact_id", f.ID),
		slog.String("destination", Name), slog.String("kind", string(f.Kind)))
	cfg, err := configFor(acct)
	if err != nil {
		log.Warn("ONTRAPORT settings are invalid; delivery parked", slog.Any("error", err))
		return deliver.Outcome{Note: err.Error()}, deliver.Permanent(err)
	}
	lim, err := ratelimit.NewShared(d.o.Store, d.o.Clock, LimiterPK(acct.ID),
		ratelimit.Limit{Requests: cfg.perMinute, Window: time.Minute})
	if err != nil {
		return deliver.Outcome{}, deliver.Permanent(&SettingsError{Key: "requests_per_minute", Value: fmt.Sprint(cfg.perMinute), Reason: err.Error()})
	}
	s := &session{
		acct: acct, cfg: cfg, log: log, hist: history.New(d.o.Store),
		c: &client{cfg: cfg, http: d.o.HTTPClient, lim: lim, clk: d.o.Clock, sleep: d.o.Sleep,
			maxWait: d.o.MaxWait, retries: d.o.Retries, log: log},
		cache: cache{st: d.o.Store, now: d.o.Clock.Now, acct: acct.ID, dry: cfg.dry, read: map[string]*store.Item{}},
	}
	res, err := s.handle(ctx, f)
	out := deliver.Outcome{Status: res.status, Exchanges: s.c.exchanges, Note: joinNotes(s.notes), Done: res.done}
	if err != nil {
		err = classify(err)
		var ra *deliver.RetryAfterError
		if errors.As(err, &ra) {
			out.RetryAfter = ra.After
		}
		return out, err
	}
	if cfg.dry && out.Status == history.DeliverySent {
		out.Status = history.DeliveryDryRun
		out.Note = dryNote(out.Note)
	}
	return out, nil
}

// classify marks what retrying cannot fix as permanent, so the forwarder parks it with its
// reason at once: a rejected request (4xx other than 408 and 429) with ONTRAPORT's body, a
// malformed fact or setting, a refund without a transaction, and the empty-selection guard.
// Rate limits keep their retry hint; server errors and timeouts stay plain errors (retried).
func classify(err error) error {
	if deliver.IsPermanent(err) {
		return err
	}
	var ra *deliver.RetryAfterError
	if errors.As(err, &ra) {
		return err
	}
	var ae *APIError
	if errors.As(err, &ae) && !ae.Temporary() {
		return deliver.Permanent(err)
	}
	for _, p := range []error{ErrSettings, ErrBadFact, ErrEmptySelection, ErrNoTransaction, outbound.ErrRedirectRefused} {
		if errors.Is(err, p) {
			return deliver.Permanent(err)
		}
	}
	return err
}

// session is one delivery.
type session struct {
	acct  accounts.Account
	cfg   config
	c     *client
	cache cache
	hist  *history.Repo
	log   *slog.Logger
	notes []string
}

func (s *session) note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

func (s *session) skip(format string, args ...any) (result, error) {
	s.note(format, args...)
	return result{status: history.DeliverySkipped}, nil
}

func (s *session) handle(ctx context.Context, f domain.Fact) (result, error) {
	switch f.Kind {
	case domain.FactOrderPlaced:
		return s.orderPlaced(ctx, f)
	case domain.FactOrderRefunded:
		return s.orderRefunded(ctx, f)
	case domain.FactSubscriptionChanged:
		return s.subscriptionChanged(ctx, f)
	case domain.FactContactChanged:
		return s.contactChanged(ctx, f)
	case domain.FactEmailChanged:
		return s.emailChanged(ctx, f)
	case domain.FactItemChanged:
		return s.itemChanged(ctx, f)
	case domain.FactOrderChargedBack:
		return s.orderChargedBack(ctx, f)
	case domain.FactOrderReversed:
		return s.orderReversed(ctx, f)
	case domain.FactOrderPaymentFailed:
		return s.paymentFailed(ctx, f)
	case domain.FactAffiliateChanged:
		return s.affiliateChanged(ctx, f)
	case domain.FactOrderShipped:
		return s.shipmentTag(ctx, f, s.cfg.tagShipped, "shipped")
	case domain.FactOrderDelivered:
		return s.shipmentTag(ctx, f, s.cfg.tagDelivered, "delivered")
	case domain.FactContactErased:
		return s.contactErased(ctx, f)
	case domain.FactOrderOutForDelivery, domain.FactCartAbandoned, domain.FactCartUpdated, domain.FactRebillScheduled:
		// ONTRAPORT has no delivery-tracking, cart or rebill-schedule object the API can write;
		// campaigns on these belong to Iterable.
		return s.skip("ONTRAPORT has no counterpart for %s facts", f.Kind)
	}
	return s.skip("unknown fact kind %q", f.Kind)
}

// upsertContact merges fields into the contact with their email (creating it when ONTRAPORT
// has none) and remembers its id for later deliveries. The id is written only when it is new
// or changed: a read costs a fifth of a write in DynamoDB, and most deliveries are of known
// contacts.
func (s *session) upsertContact(ctx context.Context, fields map[string]any) (contactResult, error) {
	r, err := s.c.saveOrUpdate(ctx, fields)
	if err != nil {
		return r, err
	}
	if email, _ := fields["email"].(string); email != "" {
		if known, err := s.cache.contact(ctx, email); err == nil && known == r.ID {
			return r, nil
		}
		if err := s.cache.putContact(ctx, email, r.ID); err != nil {
			// Only a shortcut is lost: the next delivery merges by email again.
			s.log.Warn("could not remember the ONTRAPORT contact id", slog.Any("error", err))
		}
	}
	return r, nil
}

// contactID is the id of email's contact: remembered, or from a merge of the bare email.
func (s *session) contactID(ctx context.Context, email string) (int64, error) {
	id, err := s.cache.contact(ctx, email)
	if err != nil || id > 0 {
		return id, err
	}
	r, err := s.upsertContact(ctx, map[string]any{"email": email})
	return r.ID, err
}

// fieldKeyPattern is the shape of a custom field's key; such a setting needs no lookup.
var fieldKeyPattern = regexp.MustCompile(`^f[0-9]+$`)

// fieldKeys resolves configured field names to keys. A key ("f1234") passes through; a name
// is matched, without regard to case, against the contact fields' names or keys from
// Contacts/meta (cached). A field ONTRAPORT lacks is left out and noted: the merchant creates
// custom fields, and the rest of the contact is still worth sending.
func (s *session) fieldKeys(ctx context.Context, names ...string) (map[string]string, error) {
	out := map[string]string{}
	var pending []string
	for _, n := range names {
		switch {
		case n == "":
		case fieldKeyPattern.MatchString(n):
			out[n] = n
		default:
			pending = append(pending, n)
		}
	}
	if len(pending) == 0 {
		return out, nil
	}
	var doc struct {
		metaDoc
		At time.Time `json:"at"`
	}
	ok, err := s.cache.get(ctx, metaPK(s.acct.ID), &doc)
	if err != nil {
		return nil, err
	}
	missing := func() bool {
		for _, n := range pending {
			if doc.Keys[strings.ToLower(n)] == "" {
				return true
			}
		}
		return false
	}
	// Fetch when nothing is cached, or when a name is missing from a list old enough that the
	// merchant may have created the field since.
	if !ok || (missing() && s.cache.now().Sub(doc.At) > fieldMetaRetryWait) {
		keys, err := s.c.contactFieldKeys(ctx)
		if err != nil {
			return nil, err
		}
		for _, k := range mapValues(keys) {
			keys[k] = k
		}
		doc.Keys, doc.At = keys, s.cache.now()
		if err := s.cache.put(ctx, metaPK(s.acct.ID), doc, fieldMetaTTL); err != nil {
			s.log.Warn("could not cache ONTRAPORT contact fields", slog.Any("error", err))
		}
	}
	for _, n := range pending {
		if k := doc.Keys[strings.ToLower(n)]; k != "" {
			out[n] = k
			continue
		}
		if s.cfg.dry {
			out[n] = n
			s.note("field %q shown by name", n)
			continue
		}
		s.note("ONTRAPORT has no contact field %q: create it (see the ontraport.fields settings) and later deliveries fill it", n)
	}
	return out, nil
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
