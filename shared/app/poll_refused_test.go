package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
)

// pollOrders runs the orders stream of demo-store once, with ten minutes of budget.
func (f *consoleFixture) pollOrders() ucpoll.Result {
	f.t.Helper()
	res, err := f.env.App.PollRun(context.Background(), ucpoll.Job{Account: "uc-demo-store", Stream: ucpoll.Orders},
		f.clk.Now().Add(10*time.Minute), time.Time{})
	if err != nil {
		f.t.Fatalf("poll run: %v", err)
	}
	return res
}

// assertStreams checks every stream's stop status and whether the schedule would enqueue it.
func (f *consoleFixture) assertStreams(status string, due bool) {
	f.t.Helper()
	ctx := context.Background()
	for _, stream := range ucpoll.Streams() {
		cur, _, err := ucpoll.LoadCursor(ctx, f.env.Store, "uc-demo-store", stream)
		if err != nil {
			f.t.Fatal(err)
		}
		if cur.Status != status {
			f.t.Errorf("stream %s: status %q, want %q", stream, cur.Status, status)
		}
		if got, err := ucpoll.Due(ctx, f.env.Store, "uc-demo-store", stream, f.clk.Now()); err != nil || got != due {
			f.t.Errorf("stream %s: due %v (%v), want %v", stream, got, err, due)
		}
	}
}

func TestPollRenewsTheTokenOnceAfterA401(t *testing.T) {
	f := newConsoleFixture(t)
	if resp := f.finish(f.start()); resp.StatusCode != http.StatusOK {
		t.Fatalf("connect: %d: %s", resp.StatusCode, resp.Body)
	}
	before := f.connection("uc-demo-store")
	// UltraCart revokes the access token well before it expires: only a 401 can tell.
	f.fake.RevokeAccessTokens()

	res := f.pollOrders()
	if res.Outcome != poll.CaughtUp {
		t.Fatalf("outcome %s (status %q, last error %q), want caught-up after one renewal", res.Outcome, res.Cursor.Status, res.Cursor.LastError)
	}
	if n := f.fake.Rotations(); n != 1 {
		t.Errorf("%d token renewals, want exactly 1", n)
	}
	after := f.connection("uc-demo-store")
	if after.AccessToken == before.AccessToken || !f.fake.ValidAccessToken(after.AccessToken) || after.Status != "" {
		t.Errorf("connection after the renewal: status %q, fresh token %v", after.Status, after.AccessToken != before.AccessToken)
	}
	unauthorized := 0
	for _, c := range f.fake.Calls() {
		if c.Status == http.StatusUnauthorized {
			unauthorized++
		}
	}
	if unauthorized != 1 {
		t.Errorf("%d requests answered 401, want 1: the renewed token must be used at once", unauthorized)
	}
	cur, _, _ := ucpoll.LoadCursor(context.Background(), f.env.Store, "uc-demo-store", ucpoll.Orders)
	if cur.Status != "" {
		t.Errorf("orders cursor still stopped: %q", cur.Status)
	}
}

func TestPollStopsAndTellsTheMerchantWhenUltraCartRefuses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		refuse   func(f *consoleFixture)
		undo     func(f *consoleFixture)
		status   string
		mentions []string
	}{
		{
			name: "401 and the refresh is refused",
			refuse: func(f *consoleFixture) {
				f.fake.RevokeAccessTokens()
				f.fake.FailTokenRequests("the refresh token was revoked")
			},
			undo:     func(f *consoleFixture) { f.fake.FailTokenRequests("") },
			status:   connections.StatusBroken,
			mentions: []string{"HTTP 401", "would not renew", "the refresh token was revoked", hubURL + "/connect"},
		},
		{
			name:     "410 app disabled",
			refuse:   func(f *consoleFixture) { f.fake.SetDisabled(true) },
			undo:     func(f *consoleFixture) { f.fake.SetDisabled(false) },
			status:   connections.StatusDisabled,
			mentions: []string{"disabled the cartrelay application", "HTTP 410", hubURL + "/connect"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newConsoleFixture(t)
			ctx := context.Background()
			if resp := f.finish(f.start()); resp.StatusCode != http.StatusOK {
				t.Fatalf("connect: %d: %s", resp.StatusCode, resp.Body)
			}
			tc.refuse(f)
			if res := f.pollOrders(); res.Outcome != poll.Stopped {
				t.Fatalf("outcome %s, want stopped", res.Outcome)
			}
			c := f.connection("uc-demo-store")
			if c.Status != tc.status || c.ProblemAt.IsZero() {
				t.Fatalf("connection status %q at %v, want %q", c.Status, c.ProblemAt, tc.status)
			}
			for _, want := range tc.mentions {
				if !strings.Contains(c.Problem, want) {
					t.Errorf("problem %q does not mention %q", c.Problem, want)
				}
			}
			// Every stream stops, not only the one that met the refusal, so the schedule
			// stops asking UltraCart.
			f.assertStreams(tc.status, false)
			calls := len(f.fake.Calls())
			if res, err := f.env.App.PollRun(ctx, ucpoll.Job{Account: "uc-demo-store", Stream: ucpoll.Refunds},
				f.clk.Now().Add(10*time.Minute), time.Time{}); err != nil || res.Outcome != poll.Stopped {
				t.Errorf("refunds: %s, %v; want stopped", res.Outcome, err)
			}
			if n := len(f.fake.Calls()) - calls; n != 0 {
				t.Errorf("a stopped connection still made %d requests", n)
			}

			page := f.do(http.MethodGet, "/console/home", nil, nil, []string{f.session("uc-demo-store")})
			for _, want := range []string{"<strong>" + tc.status + "</strong>", "Polling has stopped", "Connect UltraCart again"} {
				if !strings.Contains(page.Body, want) {
					t.Errorf("dashboard lacks %q: %s", want, page.Body)
				}
			}

			// Connecting again clears the problem and resumes every stream where it was.
			tc.undo(f)
			if resp := f.finish(f.start()); resp.StatusCode != http.StatusOK {
				t.Fatalf("reconnect: %d: %s", resp.StatusCode, resp.Body)
			}
			if c := f.connection("uc-demo-store"); c.Status != "" || c.Problem != "" {
				t.Errorf("after reconnecting: status %q, problem %q", c.Status, c.Problem)
			}
			f.assertStreams("", true)
			if res := f.pollOrders(); res.Outcome != poll.CaughtUp {
				t.Errorf("after reconnecting: %s, want caught-up", res.Outcome)
			}
			page = f.do(http.MethodGet, "/console/home", nil, nil, []string{f.session("uc-demo-store")})
			if strings.Contains(page.Body, "Polling has stopped") || !strings.Contains(page.Body, "<strong>connected</strong>") {
				t.Errorf("dashboard after reconnecting: %s", page.Body)
			}
		})
	}
}

func TestPollStopsOnlyTheStreamTheCredentialsMayNotRead(t *testing.T) {
	f := newConsoleFixture(t)
	ctx := context.Background()
	if resp := f.finish(f.start()); resp.StatusCode != http.StatusOK {
		t.Fatalf("connect: %d: %s", resp.StatusCode, resp.Body)
	}
	f.fake.Forbid("/rest/v2/customer/")
	res, err := f.env.App.PollRun(ctx, ucpoll.Job{Account: "uc-demo-store", Stream: ucpoll.Customers}, f.clk.Now().Add(10*time.Minute), time.Time{})
	if err != nil || res.Outcome != poll.Stopped {
		t.Fatalf("customers: %s, %v; want stopped", res.Outcome, err)
	}
	// The 401 got its one renewal first, in case the token alone was at fault.
	if n := f.fake.Rotations(); n != 1 {
		t.Errorf("%d renewals, want 1", n)
	}
	if c := f.connection("uc-demo-store"); c.Status != "" {
		t.Errorf("the connection was marked %q for one unreadable stream", c.Status)
	}
	cur, _, _ := ucpoll.LoadCursor(ctx, f.env.Store, "uc-demo-store", ucpoll.Customers)
	if cur.Status != ucpoll.StatusUnauthorized || !strings.Contains(cur.LastError, "lacks read access to customers") {
		t.Errorf("customers cursor: status %q, last error %q", cur.Status, cur.LastError)
	}
	if res := f.pollOrders(); res.Outcome != poll.CaughtUp {
		t.Errorf("orders after customers were refused: %s, want caught-up", res.Outcome)
	}
	for _, stream := range ucpoll.Streams() {
		due, err := ucpoll.Due(ctx, f.env.Store, "uc-demo-store", stream, f.clk.Now().Add(time.Hour))
		if err != nil || due == (stream == ucpoll.Customers) {
			t.Errorf("stream %s: due in an hour %v (%v)", stream, due, err)
		}
	}
	page := f.do(http.MethodGet, "/console/home", nil, nil, []string{f.session("uc-demo-store")})
	if !strings.Contains(page.Body, "lacks read access to customers") || strings.Contains(page.Body, "Polling has stopped") {
		t.Errorf("dashboard: %s", page.Body)
	}
}
