package sources_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/sources"
)

func TestLookup(t *testing.T) {
	for _, name := range []domain.Source{domain.UltraCart, domain.ThriveCart} {
		r, err := sources.Lookup(string(name))
		if err != nil || r.Name != name {
			t.Errorf("Lookup(%q) = %q, %v", name, r.Name, err)
		}
	}
	_, err := sources.Lookup("shopify")
	if !errors.Is(err, sources.ErrUnknown) || !strings.Contains(err.Error(), `"shopify"`) || !strings.Contains(err.Error(), "ultracart, thrivecart") {
		t.Fatalf("an unknown name: %v; want ErrUnknown naming it and the sources there are", err)
	}
}

// TestRegistrationsAreComplete: a registration missing a part would fail at the first delivery.
func TestRegistrationsAreComplete(t *testing.T) {
	seen := map[domain.Source]bool{}
	for _, r := range sources.All() {
		if seen[r.Name] {
			t.Errorf("%s is registered twice", r.Name)
		}
		seen[r.Name] = true
		w := r.Webhook
		switch {
		case r.Name == "" || r.Label == "":
			t.Errorf("%q: no name or label", r.Name)
		case w.Authenticate == nil || w.Split == nil || r.Normalize == nil:
			t.Errorf("%s: webhook authentication, splitting or normalization missing", r.Name)
		case len(w.Secrets) == 0:
			t.Errorf("%s: names no secret field to authenticate with", r.Name)
		case w.Denied.Status != 401 && w.Denied.Status != 403 || w.Denied.Message == "":
			t.Errorf("%s: denial %d %q", r.Name, w.Denied.Status, w.Denied.Message)
		case len(r.Events) == 0:
			t.Errorf("%s: interprets no events", r.Name)
		case r.Poller != nil && (len(r.Poller.Streams) == 0 || r.Poller.Due == nil || r.Poller.Run == nil):
			t.Errorf("%s: a poller without streams, a due check or a run", r.Name)
		}
		if o := r.Connect.OAuth; o != nil && (o.AuthorizeURL == nil || o.Finish == nil || len(o.Needs) == 0 || o.Approve == "") {
			t.Errorf("%s: an OAuth flow without its authorize page, its finish, the settings it needs or what the merchant approves", r.Name)
		}
	}
}

// TestConnectingMatchesAll: the connect function's list has every registered source, in order,
// with the name, label and connect of its full registration.
func TestConnectingMatchesAll(t *testing.T) {
	all, conn := sources.All(), sources.Connecting()
	if len(all) != len(conn) {
		t.Fatalf("All has %d sources and Connecting %d; every source's Connecting belongs in both", len(all), len(conn))
	}
	for i, r := range all {
		c := conn[i]
		if c.Name != r.Name || c.Label != r.Label {
			t.Errorf("source %d: Connecting is %s (%s), All %s (%s)", i, c.Name, c.Label, r.Name, r.Label)
		}
		if (c.Connect.Check == nil) != (r.Connect.Check == nil) || (c.Connect.OAuth == nil) != (r.Connect.OAuth == nil) {
			t.Errorf("%s: Connecting's connect differs from the registration's", r.Name)
		}
		if o, p := c.Connect.OAuth, r.Connect.OAuth; o != nil && p != nil &&
			(strings.Join(o.Needs, ",") != strings.Join(p.Needs, ",") || o.Approve != p.Approve || o.After != p.After || o.SignIn != p.SignIn) {
			t.Errorf("%s: Connecting's OAuth flow differs from the registration's", r.Name)
		}
		if c.Normalize != nil || c.Poller != nil || c.Webhook.Split != nil {
			t.Errorf("%s: Connecting carries more than the connect function reads", r.Name)
		}
	}
	if _, err := sources.LookupConnecting("shopify"); !errors.Is(err, sources.ErrUnknown) {
		t.Errorf("LookupConnecting of an unknown name: %v; want ErrUnknown", err)
	}
}
