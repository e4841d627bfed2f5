package ontraportfake

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
)

func do(t *testing.T, s *Server, method, path, key, body string) (int, http.Header, map[string]any, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.URL+path, rd)
	req.Header.Set("Api-Appid", "app")
	req.Header.Set("Api-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env map[string]any
	_ = json.Unmarshal(raw, &env)
	return resp.StatusCode, resp.Header, env, string(raw)
}

// TestFakeModelsONTRAPORT checks the behaviour tests rely on: authentication, the envelope,
// where saveorupdate puts the id, the rolling limit with its headers, and bulk selections.
func TestFakeModelsONTRAPORT(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := New(Options{AppID: "app", APIKey: "key", Limit: 3, Clock: clk})
	defer s.Close()

	if code, _, _, _ := do(t, s, "POST", "/Contacts/saveorupdate", "wrong", `{"email":"a@example.com"}`); code != 401 {
		t.Fatalf("wrong key: %d", code)
	}
	code, h, env, _ := do(t, s, "POST", "/Contacts/saveorupdate", "key", `{"email":"a@example.com","firstname":"A"}`)
	data, _ := env["data"].(map[string]any)
	if code != 200 || env["code"] != float64(0) || data["id"] == nil || h.Get("X-Rate-Limit-Remaining") != "1" {
		t.Fatalf("create: %d %v %v", code, env, h)
	}
	code, h, env, _ = do(t, s, "POST", "/Contacts/saveorupdate", "key", `{"email":"A@example.com","firstname":"B"}`)
	data, _ = env["data"].(map[string]any)
	attrs, _ := data["attrs"].(map[string]any)
	if code != 200 || data["id"] != nil || attrs["id"] == nil || attrs["firstname"] != "B" || h.Get("X-Rate-Limit-Remaining") != "0" {
		t.Fatalf("merge: %d %v", code, env)
	}
	code, h, _, body := do(t, s, "GET", "/Contacts/meta", "key", "")
	if code != 429 || h.Get("X-Rate-Limit-Reset") != "60" || !strings.Contains(body, "rate limit") {
		t.Fatalf("over the limit: %d %v %s", code, h, body)
	}
	clk.Advance(time.Minute)
	if code, _, _, _ := do(t, s, "GET", "/Contacts/meta", "key", ""); code != 200 {
		t.Fatalf("after a minute: %d", code)
	}
	if m := s.MaxInWindow(); m != 4 {
		t.Fatalf("MaxInWindow = %d; the 429 counts too", m)
	}
	clk.Advance(time.Minute)
	id := s.AddContact(map[string]string{"email": "b@example.com"})
	if code, _, _, _ := do(t, s, "PUT", "/objects/tagByName", "key", `{"objectID":0,"ids":[],"add_names":["T"]}`); code != 200 {
		t.Fatal(code)
	}
	for _, c := range s.Contacts() {
		if !c.Tags["T"] {
			t.Fatalf("an empty selection tags every contact, as in ONTRAPORT: %+v (contact %d)", c, id)
		}
	}
}
