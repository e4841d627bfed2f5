// Package sourcetest is the contract every source passes (docs/architecture.md, Adding a
// source): a delivery without the account's credential is refused, as 401 or 403, without a
// durable write; a good delivery splits into events, each with a stable id, so a redelivery is
// recognised; a malformed body is refused with a clear answer or kept raw with its reason, as
// the source declares; every raw event kind the source registers decodes, and one it does not
// know, or cannot read, is kept raw with a reason. A source's test calls Run once per store
// backend, and Fuzz from a FuzzXxx of its own.
package sourcetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Account is the id of the account the suite configures.
const Account = "contract"

// Env is one source's side of the contract.
type Env struct {
	Reg source.Registration
	// Settings is the account file (JSON) that gives the account the source's credential.
	Settings string
	// Secret is the credential's secret part; no event may carry it.
	Secret string
	// Good is a delivery the account's credential authenticates (Account is set by the suite).
	Good source.Delivery
	// Refused are deliveries that do not prove the credential: wrong, missing.
	Refused map[string]source.Delivery
	// Malformed are authenticated deliveries whose body cannot be used as it is.
	Malformed map[string]Malformed
	// Samples are stored raw events: of every name in Reg.Events at least one that decodes.
	// Any other is kept raw with a reason.
	Samples []source.Raw
	// Unknown is a stored raw event of a kind the source sends but cartrelay does not interpret.
	Unknown source.Raw
}

// Malformed is an authenticated delivery and what the source does with it.
type Malformed struct {
	Delivery source.Delivery
	// Status is the refusal's status (400, 413), or 0 when the delivery is accepted and the
	// unusable events are kept raw with a reason.
	Status int
	// Says is a phrase the refusal or the kept reason carries, so the sender or the operator
	// learns what is wrong.
	Says string
}

// Run checks the contract over newStore, a fresh store of one backend per call.
func Run(t *testing.T, newStore func(t *testing.T, clk clock.Clock) store.Store, e Env) {
	t.Run("a delivery without the credential is refused without a durable write", func(t *testing.T) {
		c := setup(t, newStore, e)
		if len(e.Refused) == 0 {
			t.Fatal("the source declares no refused deliveries")
		}
		unknown := e.Good
		unknown.Account = "no-such-account"
		cases := map[string]source.Delivery{"the right credential for an unknown account": unknown}
		for name, d := range e.Refused {
			d.Account = Account
			cases[name] = d
		}
		for name, d := range cases {
			before := c.writes.Load()
			evs, ans := source.Receive(context.Background(), e.Reg, c.repo, d)
			if ans == nil {
				t.Fatalf("%s: accepted %d event(s)", name, len(evs))
			}
			if ans.Status != http.StatusUnauthorized && ans.Status != http.StatusForbidden {
				t.Errorf("%s: status %d, want 401 or 403", name, ans.Status)
			}
			if ans.Status != e.Reg.Webhook.Denied.Status || ans.Message != e.Reg.Webhook.Denied.Message {
				t.Errorf("%s: answer %d %q differs from the source's one denial, which tells nothing about the account", name, ans.Status, ans.Message)
			}
			if ans.Reason == "" {
				t.Errorf("%s: no reason for the log", name)
			}
			if n := c.writes.Load() - before; n != 0 {
				t.Errorf("%s: %d write(s) to the table for a refused delivery", name, n)
			}
		}
	})

	t.Run("a good delivery splits into events with stable ids", func(t *testing.T) {
		c := setup(t, newStore, e)
		d := e.Good
		d.Account = Account
		first := c.accept(t, d)
		again := c.accept(t, d)
		if len(first) == 0 {
			t.Fatal("a good delivery gave no events")
		}
		if len(again) != len(first) {
			t.Fatalf("a redelivery gave %d events, the first %d", len(again), len(first))
		}
		seen := map[string]int{}
		for i, ev := range first {
			id := source.ID(Account, e.Reg.Name, ev.Name, ev.Payload)
			if again := source.ID(Account, e.Reg.Name, again[i].Name, again[i].Payload); again != id {
				t.Errorf("event %d: id %s on the first delivery, %s on the redelivery", i, id, again)
			}
			if j, dup := seen[id]; dup && !bytes.Equal(first[j].Payload, ev.Payload) {
				t.Errorf("events %d and %d differ but share id %s", j, i, id)
			}
			seen[id] = i
			if ev.Name == "" || ev.Problem != "" {
				t.Errorf("event %d of a good delivery: name %q, problem %q", i, ev.Name, ev.Problem)
			}
			if !json.Valid(ev.Payload) {
				t.Errorf("event %d: payload is not JSON", i)
			}
			if e.Secret != "" && bytes.Contains(ev.Payload, []byte(e.Secret)) {
				t.Errorf("event %d carries the account's secret", i)
			}
			if ID := source.ID("another", e.Reg.Name, ev.Name, ev.Payload); ID == id {
				t.Errorf("event %d: the same id in another account", i)
			}
		}
	})

	t.Run("a malformed body is refused clearly or kept raw with a reason", func(t *testing.T) {
		c := setup(t, newStore, e)
		if len(e.Malformed) == 0 {
			t.Fatal("the source declares no malformed deliveries")
		}
		for name, m := range e.Malformed {
			d := m.Delivery
			d.Account = Account
			evs, ans := source.Receive(context.Background(), e.Reg, c.repo, d)
			if m.Status != 0 {
				if ans == nil || ans.Status != m.Status || !strings.Contains(ans.Message, m.Says) {
					t.Errorf("%s: %+v, want %d saying %q", name, ans, m.Status, m.Says)
				}
				continue
			}
			if ans != nil {
				t.Errorf("%s: refused %d %q, want it kept raw", name, ans.Status, ans.Message)
				continue
			}
			kept := 0
			for _, ev := range evs {
				if ev.Problem == "" {
					continue
				}
				kept++
				if !json.Valid(ev.Payload) || !strings.Contains(ev.Problem, m.Says) {
					t.Errorf("%s: kept event %d: payload valid %v, problem %q (want it to say %q)", name, ev.Index, json.Valid(ev.Payload), ev.Problem, m.Says)
				}
			}
			if kept == 0 {
				t.Errorf("%s: accepted with no event kept raw", name)
			}
		}
	})

	t.Run("every raw event kind decodes, and others are kept with a reason", func(t *testing.T) {
		if len(e.Reg.Events) == 0 {
			t.Fatal("the source registers no event kinds")
		}
		at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
		decoded := map[string]bool{}
		for _, s := range e.Samples {
			s.ReceivedAt = at
			evs, err := e.Reg.Normalize(s, accounts.Account{ID: Account}, nil)
			if err != nil {
				// Ingest keeps it raw, as unknown or invalid, with the error as the reason.
				if !kept(err, domain.ErrUnknownEvent) && !invalid(err) {
					t.Errorf("sample %s: %q is no reason", s.Name, err)
				}
				continue
			}
			decoded[s.Name] = true
			for _, de := range evs {
				if de.Kind == "" || de.Source != e.Reg.Name {
					t.Errorf("sample %s: domain event kind %q source %q", s.Name, de.Kind, de.Source)
				}
			}
			// The same event with a body that is not the event's is kept raw as invalid.
			bad := s
			bad.Payload = json.RawMessage(`[1,2,3]`)
			if _, err := e.Reg.Normalize(bad, accounts.Account{ID: Account}, nil); !invalid(err) {
				t.Errorf("sample %s with an array for a body: %v, want an invalid event with a reason", s.Name, err)
			}
		}
		for _, name := range e.Reg.Events {
			if !decoded[name] {
				t.Errorf("no sample of %q decodes, though the source says it interprets it", name)
			}
		}
		if e.Unknown.Name == "" {
			t.Fatal("the source declares no event of a kind it does not interpret")
		}
		u := e.Unknown
		u.ReceivedAt = at
		if _, err := e.Reg.Normalize(u, accounts.Account{ID: Account}, nil); !kept(err, domain.ErrUnknownEvent) {
			t.Errorf("event %s, of a kind the source does not interpret: %v, want an unknown event with a reason", u.Name, err)
		}
	})
}

// kept reports whether err keeps an event raw as kind, with a reason.
func kept(err, kind error) bool {
	return err != nil && errors.Is(err, kind) && strings.TrimSpace(err.Error()) != ""
}

// invalid reports whether ingest keeps the event raw as invalid, with a reason: any error
// but an unknown event's.
func invalid(err error) bool {
	return err != nil && !errors.Is(err, domain.ErrUnknownEvent) && strings.TrimSpace(err.Error()) != ""
}

// Fuzz checks, over any body and content type, that a delivery is split without a panic into
// events whose payloads are JSON (a malformed one kept with a reason), or refused; and that
// normalizing what it gives either yields domain events or keeps the event with a reason.
func Fuzz(f *testing.F, reg source.Registration, seeds []source.Delivery) {
	for _, s := range seeds {
		f.Add(s.Body, s.Header("content-type"))
	}
	f.Fuzz(func(t *testing.T, body []byte, ctype string) {
		d := Post(body, map[string]string{"content-type": ctype})
		d.Account = Account
		evs, err := reg.Webhook.Split(d)
		if err != nil {
			var a *source.Answer
			if errors.As(err, &a) && (a.Status < 400 || a.Message == "") {
				t.Fatalf("refusal %d %q", a.Status, a.Message)
			}
			if err.Error() == "" {
				t.Fatal("a refusal without a message")
			}
			return
		}
		for _, ev := range evs {
			if !json.Valid(ev.Payload) {
				t.Fatalf("event %d %q: payload is not JSON: %q", ev.Index, ev.Name, ev.Payload)
			}
			if ev.Problem != "" {
				continue
			}
			des, err := reg.Normalize(source.Raw{Name: ev.Name, Payload: ev.Payload, Index: ev.Index, ReceivedAt: time.Unix(0, 0)}, accounts.Account{ID: Account}, nil)
			if err != nil && !kept(err, domain.ErrUnknownEvent) && !invalid(err) {
				t.Fatalf("event %d %q: %q keeps it without a reason", ev.Index, ev.Name, err)
			}
			for _, de := range des {
				if de.Kind == "" {
					t.Fatalf("event %d %q normalized to a domain event without a kind", ev.Index, ev.Name)
				}
			}
		}
	})
}

type contract struct {
	reg    source.Registration
	repo   *accounts.Repo
	writes *atomic.Int64
}

func setup(t *testing.T, newStore func(t *testing.T, clk clock.Clock) store.Store, e Env) contract {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	key, err := secrets.NewLocalKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	c := contract{reg: e.Reg, writes: &atomic.Int64{}}
	st := counting{Store: newStore(t, clk), writes: c.writes}
	c.repo = accounts.NewRepo(st, secrets.NewSealer(key, clk), clk)
	if _, err := c.repo.Put(context.Background(), Account, []byte(e.Settings)); err != nil {
		t.Fatalf("configure the account: %v", err)
	}
	return c
}

func (c contract) accept(t *testing.T, d source.Delivery) []source.Event {
	t.Helper()
	evs, ans := source.Receive(context.Background(), c.reg, c.repo, d)
	if ans != nil {
		t.Fatalf("a good delivery was not accepted: %d %q (%s)", ans.Status, ans.Message, ans.Reason)
	}
	return evs
}

// counting counts the writes that reach the table.
type counting struct {
	store.Store
	writes *atomic.Int64
}

func (c counting) Write(ctx context.Context, w store.Write) error {
	c.writes.Add(1)
	return c.Store.Write(ctx, w)
}

func (c counting) Transact(ctx context.Context, ws []store.Write) error {
	c.writes.Add(1)
	return c.Store.Transact(ctx, ws)
}

// Post is a POST delivery of body with these headers (names in any case).
func Post(body []byte, headers map[string]string) source.Delivery {
	return source.Delivery{Method: http.MethodPost, Body: body, Header: func(name string) string {
		for k, v := range headers {
			if strings.EqualFold(k, name) {
				return v
			}
		}
		return ""
	}}
}
