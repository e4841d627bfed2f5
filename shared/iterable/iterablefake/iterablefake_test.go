package iterablefake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
)

type reply struct {
	status     int
	retryAfter string
	env        struct{ Msg, Code string }
}

func post(t *testing.T, s *iterablefake.Server, key, path, body string) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Api-Key", key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	_ = json.Unmarshal(raw, &r.env)
	return r
}

func TestFake(t *testing.T) {
	spec, _ := iterablefake.FindSpec()
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	s, err := iterablefake.New(iterablefake.Options{APIKey: "k1", Clock: clk, SpecPath: spec,
		Limits: map[string]iterablefake.Limit{"/api/users/update": {Requests: 2, Window: time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	user := func(ltv string) string { return `{"email":"a@example.com","dataFields":{"ltv":` + ltv + `}}` }
	steps := []struct {
		name       string
		key, path  string
		body       string
		advance    time.Duration
		inject     *iterablefake.Fault
		status     int
		code       string
		retryAfter string
	}{
		{name: "no key", path: "/api/users/update", body: user("1.5"), status: 401, code: "BadApiKey"},
		{name: "wrong key", key: "k2", path: "/api/users/update", body: user("1.5"), status: 401, code: "BadApiKey"},
		{name: "ok", key: "k1", path: "/api/users/update", body: user("1.5"), status: 200, code: "Success"},
		{name: "type fixed by the first value", key: "k1", path: "/api/users/update", body: user("2"), status: 400, code: "RequestFieldsTypesMismatched"},
		{name: "rate limit", key: "k1", path: "/api/users/update", body: user("2.5"), status: 429, code: "RateLimitExceeded", retryAfter: ""},
		{name: "window moved on", key: "k1", path: "/api/users/update", body: user("2.5"), advance: time.Second, status: 200, code: "Success"},
		{name: "bad json", key: "k1", path: "/api/events/track", body: `{"email":`, status: 400, code: "BadJsonBody"},
		{name: "unknown endpoint", key: "k1", path: "/api/nope", body: `{}`, status: 404, code: "NotFound"},
		{name: "injected 503", key: "k1", path: "/api/events/track", body: `{"email":"a@example.com","eventName":"x"}`,
			inject: &iterablefake.Fault{Status: 503}, status: 503, code: "GenericError"},
		{name: "injected 429", key: "k1", path: "/api/events/track", body: `{"email":"a@example.com","eventName":"x"}`,
			inject: &iterablefake.Fault{Status: 429, RetryAfter: "9"}, status: 429, code: "RateLimitExceeded", retryAfter: "9"},
		{name: "after faults", key: "k1", path: "/api/events/track", body: `{"email":"a@example.com","eventName":"x","id":"e1"}`, status: 200, code: "Success"},
		{name: "same event id updates", key: "k1", path: "/api/events/track", body: `{"email":"a@example.com","eventName":"x","id":"e1"}`, status: 200, code: "Success"},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		if st.inject != nil {
			s.Inject(*st.inject)
		}
		r := post(t, s, st.key, st.path, st.body)
		if r.status != st.status || r.env.Code != st.code || r.retryAfter != st.retryAfter {
			t.Fatalf("%s: %d %q retry-after %q, want %d %q %q (%s)", st.name, r.status, r.env.Code, r.retryAfter, st.status, st.code, st.retryAfter, r.env.Msg)
		}
	}
	if evs := s.Events("x"); len(evs) != 1 || evs[0].Updates != 1 {
		t.Fatalf("events: %+v", evs)
	}
	if got := s.FieldType("user.ltv"); got != "double" {
		t.Fatalf("user.ltv is %q", got)
	}
	s.Forget("a@example.com")
	if r := post(t, s, "k1", "/api/commerce/trackPurchase", `{"id":"p1","user":{"email":"a@example.com"},"items":[],"total":1.0}`); r.status != 409 || r.env.Code != "ForgottenUserError" {
		t.Fatalf("forgotten purchase: %+v", r)
	}
	if len(s.Calls()) != len(steps)+1 {
		t.Fatalf("%d calls recorded", len(s.Calls()))
	}
}

// TestSpecValidation: with Iterable's Swagger file, a body of the wrong shape is refused
// (skipped when the file is absent).
func TestSpecValidation(t *testing.T) {
	spec, ok := iterablefake.FindSpec()
	if !ok {
		t.Skip("Iterable's Swagger file is absent")
	}
	s, err := iterablefake.New(iterablefake.Options{APIKey: "k1", SpecPath: spec})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		path, body string
		ok         bool
	}{
		{"/api/events/track", `{"email":"a@example.com","eventName":"x","createdAt":1700000000}`, true},
		{"/api/events/track", `{"email":"a@example.com","eventName":"x","createdAt":"yesterday"}`, false},
		{"/api/events/track", `{"email":"a@example.com"}`, false},
		{"/api/commerce/trackPurchase", `{"user":{"email":"a@example.com"},"items":[{"id":"1","name":"n","price":1.5,"quantity":1}],"total":1.5}`, true},
		{"/api/commerce/trackPurchase", `{"user":{"email":"a@example.com"},"items":[{"id":"1","name":"n","price":1.5}],"total":1.5}`, false},
		{"/api/commerce/trackPurchase", `{"user":{"email":"a@example.com"},"items":[],"total":1.5,"campaignId":99999999999}`, false},
		{"/api/lists/subscribe", `{"listId":12,"subscribers":[{"email":"a@example.com"}]}`, true},
		{"/api/users/updateEmail", `{"currentEmail":"a@example.com","newEmail":"b@example.com","extra":1}`, false},
	} {
		r := post(t, s, "k1", tc.path, tc.body)
		if (r.status == 400 && r.env.Code == "BadParams") == tc.ok {
			t.Errorf("%s %s: %d %s %s", tc.path, tc.body, r.status, r.env.Code, r.env.Msg)
		}
	}
}

// A bulk track lists forgotten users under forgottenEmails, as BulkTrackResponse documents,
// not as invalid addresses.
func TestTrackBulkForgotten(t *testing.T) {
	s, err := iterablefake.New(iterablefake.Options{APIKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Forget("gone@example.com")
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/events/trackBulk", strings.NewReader(
		`{"events":[{"email":"a@example.com","eventName":"x"},{"email":"gone@example.com","eventName":"x"},{"email":"","eventName":"x"}]}`))
	req.Header.Set("Api-Key", "k1")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		SuccessCount  int                 `json:"successCount"`
		FailCount     int                 `json:"failCount"`
		FailedUpdates map[string][]string `json:"failedUpdates"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.SuccessCount != 1 || got.FailCount != 2 || len(got.FailedUpdates["forgottenEmails"]) != 1 || len(got.FailedUpdates["invalidEmails"]) != 1 {
		t.Errorf("got %+v", got)
	}
}
