package iterable_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
)

// TestFailures covers how each kind of answer is classified: retried, retried after the
// server's hint, or parked; and that the exchanges are returned with the error.
func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fact      string
		setup     func(e *env)
		timeout   time.Duration
		permanent bool
		retryHint time.Duration
		errHas    string
		status    int // of the last exchange; 0 when no answer came
	}{
		{name: "5xx is retried", fact: "contact_changed", status: 503, errHas: "HTTP 503",
			setup: func(e *env) { e.fake.Inject(iterablefake.Fault{Path: iterable.PathUsersUpdate, Status: 503}) }},
		{name: "gateway HTML page keeps its title", fact: "order_placed", status: 502, errHas: "502 Bad Gateway from the edge",
			setup: func(e *env) {
				e.fake.Inject(iterablefake.Fault{Status: 502, Body: "<html><head><title>502 Bad Gateway from the edge</title></head><body>oops</body></html>"})
			}},
		{name: "429 honours Retry-After", fact: "order_shipped", status: 429, retryHint: 7 * time.Second, errHas: "RateLimitExceeded",
			setup: func(e *env) {
				e.fake.Inject(iterablefake.Fault{Path: iterable.PathEventsTrack, Status: 429, RetryAfter: "7"})
			}},
		{name: "forgotten user is parked", fact: "contact_changed", status: 409, permanent: true, errHas: "ForgottenUserError",
			setup: func(e *env) { e.fake.Forget("ann@example.com") }},
		{name: "forgotten user's purchase is parked", fact: "order_placed", status: 409, permanent: true, errHas: "ForgottenUserError",
			setup: func(e *env) { e.fake.Forget("ann@example.com") }},
		{name: "bad API key is parked", fact: "order_placed", status: 401, permanent: true, errHas: "BadApiKey",
			setup: func(e *env) { e.acct.Set("iterable.api_key", accounts.NewSecret("wrong")) }},
		{name: "new email taken is parked", fact: "email_changed", status: 409, permanent: true, errHas: "EmailAlreadyExists",
			setup: func(e *env) {
				mustDeliver(e, "contact_changed")
				f := loadFact(e.t, "contact_changed")
				c := *f.Contact
				c.Email = "ann.lee@example.com"
				f.Contact, f.Email, f.ID = &c, c.Email, f.ID+"-new"
				if _, err := e.dest.Deliver(context.Background(), e.acct, f); err != nil {
					e.t.Fatal(err)
				}
			}},
		{name: "timeout is retried", fact: "order_placed", timeout: 150 * time.Millisecond, errHas: "no answer",
			setup: func(e *env) { e.fake.Inject(iterablefake.Fault{Delay: time.Second}) }},
		{name: "settings error is parked before any call", fact: "order_placed", permanent: true, errHas: "iterable.review_wait",
			setup: func(e *env) { e.acct.Set("iterable.review_wait", "a week") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{timeout: tc.timeout})
			if tc.setup != nil {
				tc.setup(e)
			}
			out, err := e.dest.Deliver(context.Background(), e.acct, loadFact(t, tc.fact))
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("error %v, want one saying %q", err, tc.errHas)
			}
			if deliver.IsPermanent(err) != tc.permanent {
				t.Fatalf("permanent = %v, want %v (%v)", deliver.IsPermanent(err), tc.permanent, err)
			}
			var ra *deliver.RetryAfterError
			if got := errors.As(err, &ra); got != (tc.retryHint > 0) || (got && ra.After != tc.retryHint) {
				t.Fatalf("retry hint: %v %+v, want %s", got, ra, tc.retryHint)
			}
			if tc.errHas == "iterable.review_wait" {
				if len(out.Exchanges) != 0 {
					t.Fatalf("calls made with invalid settings: %+v", out.Exchanges)
				}
				return
			}
			if len(out.Exchanges) == 0 {
				t.Fatal("no exchange returned with the error")
			}
			last := out.Exchanges[len(out.Exchanges)-1]
			if last.Status != tc.status {
				t.Fatalf("last exchange status %d, want %d", last.Status, tc.status)
			}
			if last.RequestHeaders["Api-Key"] != "[redacted]" || strings.Contains(last.RequestBody+last.ResponseBody, testKey) {
				t.Fatalf("the API key leaked into the delivery log: %+v", last)
			}
		})
	}
}

func mustDeliver(e *env, name string) {
	e.t.Helper()
	if _, err := e.dest.Deliver(context.Background(), e.acct, loadFact(e.t, name)); err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
}

// TestRetryAfterPausesEveryone: after a 429 with Retry-After, the pause is kept in the table, so
// the next delivery (in any process) waits without calling Iterable.
func TestRetryAfterPausesEveryone(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	e.fake.Inject(iterablefake.Fault{Path: iterable.PathEventsTrack, Status: 429, RetryAfter: "30"})
	if _, err := e.dest.Deliver(ctx, e.acct, loadFact(t, "order_refunded")); err == nil {
		t.Fatal("the 429 was not reported")
	}
	calls := len(e.fake.Calls())
	_, err := e.dest.Deliver(ctx, e.acct, loadFact(t, "order_shipped"))
	var ra *deliver.RetryAfterError
	if !errors.As(err, &ra) || ra.After < 20*time.Second || !errors.Is(err, iterable.ErrRateLimited) {
		t.Fatalf("second delivery during the pause: %v", err)
	}
	if len(e.fake.Calls()) != calls {
		t.Fatal("Iterable was called during the pause it asked for")
	}
	// Other endpoint classes are not paused.
	mustDeliver(e, "contact_changed")
	e.clk.Advance(31 * time.Second)
	mustDeliver(e, "order_shipped")
}

// TestSharedLimiterKeepsUnderPublishedRate: with users/update scaled down to 3 per second at
// both ends, a burst of profile updates is paced by the shared limiter and never sees a 429.
func TestSharedLimiterKeepsUnderPublishedRate(t *testing.T) {
	e := newEnv(t, envOpts{
		limits:     map[string]ratelimit.Limit{iterable.ClassUsersUpdate: {Requests: 3, Window: time.Second}},
		fakeLimits: map[string]iterablefake.Limit{iterable.PathUsersUpdate: {Requests: 3, Window: time.Second}},
	})
	e.acct.Set("iterable.email_list_ids", "", "iterable.sms_list_ids", "")
	ctx := context.Background()
	base := loadFact(t, "contact_changed")
	start := e.clk.Now()
	for i := range 12 {
		f := base
		f.ID = base.ID + string(rune('a'+i))
		if _, err := e.dest.Deliver(ctx, e.acct, f); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	for _, c := range e.fake.Calls() {
		if c.Status == 429 {
			t.Fatalf("the fake had to refuse a request: %+v", c)
		}
	}
	if got := len(e.fake.CallsTo(iterable.PathUsersUpdate)); got != 12 {
		t.Fatalf("%d updates reached Iterable", got)
	}
	if elapsed := e.clk.Now().Sub(start); elapsed < 3*time.Second {
		t.Fatalf("12 updates at 3/s took %s", elapsed)
	}
}

// TestEmailChangeOfUnknownUser: Iterable never heard of the old address; nothing to move.
func TestEmailChangeOfUnknownUser(t *testing.T) {
	e := newEnv(t, envOpts{})
	out, err := e.dest.Deliver(context.Background(), e.acct, loadFact(t, "email_changed"))
	if err != nil || !strings.Contains(out.Note, "does not know") {
		t.Fatalf("%+v %v", out, err)
	}
}

// TestListsFollowOptIns: subscribe on opt-in, nothing more while it stays, unsubscribe on
// opt-out; a dry run remembers nothing.
func TestListsFollowOptIns(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	f := loadFact(t, "contact_changed")
	step := func(emailIn, smsIn *bool, wantEmail, wantSMS []string, wantListCalls int) {
		t.Helper()
		c := *f.Contact
		c.EmailOptIn, c.SMSOptIn = emailIn, smsIn
		f.Contact = &c
		f.ID += "+"
		before := len(e.fake.CallsTo(iterable.PathListsSubscribe)) + len(e.fake.CallsTo(iterable.PathListsUnsubscribe))
		if _, err := e.dest.Deliver(ctx, e.acct, f); err != nil {
			t.Fatal(err)
		}
		after := len(e.fake.CallsTo(iterable.PathListsSubscribe)) + len(e.fake.CallsTo(iterable.PathListsUnsubscribe))
		if got := e.fake.ListMembers(111); strings.Join(got, ",") != strings.Join(wantEmail, ",") {
			t.Fatalf("email list: %v, want %v", got, wantEmail)
		}
		if got := e.fake.ListMembers(222); strings.Join(got, ",") != strings.Join(wantSMS, ",") {
			t.Fatalf("SMS list: %v, want %v", got, wantSMS)
		}
		if after-before != wantListCalls {
			t.Fatalf("%d list calls, want %d", after-before, wantListCalls)
		}
	}
	yes, no := true, false
	ann := []string{"ann@example.com"}
	step(&yes, &yes, ann, ann, 2)
	step(&yes, &yes, ann, ann, 0) // an LTV change alone moves no list
	step(&no, &yes, nil, ann, 1)
	step(nil, &no, nil, nil, 1) // unknown email opt-in changes nothing
	e.acct.Set("iterable.email_list_ids", "111, 333")
	step(&yes, &no, ann, nil, 2) // a newly configured list is joined too
}

// TestHistoricalNeverCampaigns: whatever the history mode, a historical purchase, cart or
// shipment is not sent; a historical profile is.
func TestHistoricalNeverCampaigns(t *testing.T) {
	for _, mode := range []string{"none", "profiles", "all"} {
		e := newEnv(t, envOpts{})
		e.acct.Set("iterable.history", accountsHistory(mode))
		ctx := context.Background()
		for _, name := range []string{"order_placed", "order_shipped", "cart_abandoned", "order_refunded", "subscription_started"} {
			f := loadFact(t, name)
			f.Historical = true
			out, err := e.dest.Deliver(ctx, e.acct, f)
			if err != nil || out.Status != history.DeliverySkipped {
				t.Fatalf("%s historical %s: %+v %v", mode, name, out, err)
			}
		}
		mustDeliver(e, "historical_profile")
		if len(e.fake.Calls()) != 1 || e.fake.Calls()[0].Path != iterable.PathUsersUpdate {
			t.Fatalf("history mode %s: calls %+v", mode, e.fake.Calls())
		}
	}
}

func TestToggles(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.acct.Set("iterable.disable_regular_events", true)
	e.acct.Set("iterable.disable_return_cart_events", true)
	ctx := context.Background()
	for _, name := range []string{"order_placed", "order_shipped", "order_refunded", "subscription_started", "cart_abandoned", "cart_reminder", "review_request"} {
		out, err := e.dest.Deliver(ctx, e.acct, loadFact(t, name))
		if err != nil || out.Status != history.DeliverySkipped || !strings.Contains(out.Note, "off") {
			t.Fatalf("%s with events off: %+v %v", name, out, err)
		}
	}
	mustDeliver(e, "contact_changed")
	mustDeliver(e, "email_changed")
	if len(e.fake.CallsTo(iterable.PathTrackPurchase))+len(e.fake.CallsTo(iterable.PathEventsTrack)) != 0 {
		t.Fatal("an event was sent with events off")
	}
}

func TestParseSettings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		set   func(a *accountT)
		check func(t *testing.T, s iterable.Settings)
		err   string
	}{
		{name: "defaults", set: func(*accountT) {}, check: func(t *testing.T, s iterable.Settings) {
			if s.BaseURL != "https://api.iterable.com" || s.ReturnCartDelay != time.Hour || s.AbandonCartAfter != 30*time.Minute ||
				s.ReviewWait != 7*24*time.Hour || s.ReviewLinkTTL != 30*24*time.Hour || !s.RegularEvents || !s.ReturnCartEvents || !s.DryRun() {
				t.Fatalf("%+v", s)
			}
		}},
		{name: "eu data center", set: func(a *accountT) { a.Set("iterable.data_center", "EU") }, check: func(t *testing.T, s iterable.Settings) {
			if s.BaseURL != iterable.EUBaseURL {
				t.Fatal(s.BaseURL)
			}
		}},
		{name: "a fake base URL wins over the data center", set: func(a *accountT) {
			a.Set("iterable.data_center", "eu")
			a.Set("iterable.base_url", "http://127.0.0.1:9")
		},
			check: func(t *testing.T, s iterable.Settings) {
				if s.BaseURL != "http://127.0.0.1:9" {
					t.Fatal(s.BaseURL)
				}
			}},
		{name: "durations and lists", set: func(a *accountT) {
			a.Set("iterable.return_cart_delay", "45m", "iterable.abandon_cart_after", "2h", "iterable.review_wait", "1d12h", "iterable.email_list_ids", " 12 ,34", "iterable.thumbnail_size", "120")
		}, check: func(t *testing.T, s iterable.Settings) {
			if s.ReturnCartDelay != 45*time.Minute || s.CartWait() != 2*time.Hour || s.ReviewWait != 36*time.Hour ||
				len(s.EmailLists) != 2 || s.EmailLists[1] != 34 || s.ThumbWidth != 120 || s.ThumbHeight != 120 {
				t.Fatalf("%+v", s)
			}
		}},
		{name: "every bad value is reported", set: func(a *accountT) {
			a.Set("iterable.data_center", "asia", "iterable.review_wait", "soon", "iterable.email_list_ids", "12,abc", "iterable.thumbnail_size", "big", "iterable.review_url_template", "shop.example.com")
		}, err: "iterable.data_center|iterable.review_wait|iterable.email_list_ids|iterable.thumbnail_size|iterable.review_url_template"},
		{name: "behavioural lists", set: func(a *accountT) { a.Set("iterable.purchase_list_ids", "7, 8", "iterable.cart_list_ids", "9") },
			check: func(t *testing.T, s iterable.Settings) {
				if len(s.PurchaseLists) != 2 || s.PurchaseLists[1] != 8 || len(s.CartLists) != 1 || s.CartLists[0] != 9 {
					t.Fatalf("%+v", s)
				}
			}},
		{name: "bad behavioural lists", set: func(a *accountT) { a.Set("iterable.purchase_list_ids", "seven", "iterable.cart_list_ids", "-9") },
			err: "iterable.purchase_list_ids|iterable.cart_list_ids|not an Iterable list id"},
		{name: "over a year", set: func(a *accountT) { a.Set("iterable.review_wait", "400d") }, err: "longer than a year"},
		{name: "review links past a year", set: func(a *accountT) { a.Set("iterable.review_link_ttl", "400d") }, err: "iterable.review_link_ttl|longer than a year"},
		{name: "review page off the store's domains", set: func(a *accountT) { a.Set("iterable.review_url_template", "https://reviews.example.net/{sku}") },
			err: "iterable.review_url_template|allowed_domains"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &env{}
			e.acct.ID = "acme"
			tc.set(&e.acct)
			s, err := iterable.ParseSettings(e.acct)
			if tc.err != "" {
				for _, want := range strings.Split(tc.err, "|") {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Fatalf("error %v does not mention %s", err, want)
					}
				}
				if !errors.Is(err, iterable.ErrSettings) {
					t.Fatalf("error %v is not ErrSettings", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}
