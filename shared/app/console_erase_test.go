package app_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/domain"
)

var pseudonymInPage = regexp.MustCompile(`erased-[0-9a-f]+@erased\.invalid`)

// TestConsoleEraseContact erases a contact from its page: a confirmation that shows what goes
// and what stays, a post that needs the session's CSRF token and the confirmation, and an answer
// that names the pseudonym and never the address. bravo's contact cannot be reached from acme.
func TestConsoleEraseContact(t *testing.T) {
	e, data := newPagesEnv(t)
	d := data["acme"]
	who := url.Values{"email": {d.email}}

	wantPage(t, "contact page", e.get("acme", "/console/contact", who), http.StatusOK,
		"Erase this contact", `href="`+hubURL+`/console/contact/erase?email=marcus.reyes%40example.com"`)
	wantPage(t, "confirmation", e.get("acme", "/console/contact/erase", who), http.StatusOK,
		"Erase this contact?", "cannot be undone", "<code>"+d.email+"</code>", "Orders kept</dt><dd>1 ", "ONTRAPORT contact is anonymized",
		`name="confirm" value="yes"`, `name="csrf" value="`+e.sessions.CSRFToken(e.sess["acme"])+`"`)
	if v := e.contact("acme", d.email); v.Profile == nil {
		t.Fatal("reading the confirmation erased the contact")
	}

	// A post without the session's token (a forged form) changes nothing.
	forged := url.Values{"email": {d.email}, "confirm": {"yes"}}
	req := httpReq(http.MethodPost, "/console/contact/erase", "application/x-www-form-urlencoded", []byte(forged.Encode()), nil)
	req.Cookies = []string{e.cookie("acme")}
	resp, err := e.env.App.Connect(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	wantPage(t, "post without CSRF", resp, http.StatusForbidden, "nothing was changed")
	// A post with the token but not from the confirmation asks first.
	wantPage(t, "post unconfirmed", e.post("acme", "/console/contact/erase", who), http.StatusOK, "Erase this contact?")
	if v := e.contact("acme", d.email); v.Profile == nil || len(v.Orders) != 1 {
		t.Fatal("a refused or unconfirmed post erased the contact")
	}
	if log := e.auditLog("acme"); len(log) != 0 {
		t.Fatalf("activity before the erasure: %+v", log)
	}

	// acme's session cannot read or erase bravo's contact.
	b := data["bravo"]
	for _, r := range []struct {
		what string
		resp func() int
	}{
		{"GET", func() int { return e.get("acme", "/console/contact/erase", url.Values{"email": {b.email}}).StatusCode }},
		{"POST", func() int {
			return e.post("acme", "/console/contact/erase", url.Values{"email": {b.email}, "confirm": {"yes"}}).StatusCode
		}},
	} {
		if got := r.resp(); got != http.StatusNotFound {
			t.Errorf("%s bravo's contact erase under acme's session: %d, want 404", r.what, got)
		}
	}
	if v := e.contact("bravo", b.email); v.Profile == nil || len(v.Orders) != 1 {
		t.Fatal("acme's session erased bravo's contact")
	}
	if log := e.auditLog("bravo"); len(log) != 0 {
		t.Errorf("bravo's activity log holds %+v", log)
	}

	done := e.post("acme", "/console/contact/erase", url.Values{"email": {d.email}, "confirm": {"yes"}})
	wantPage(t, "erase", done, http.StatusOK, "Erasure under way", "Orders kept</dt><dd>1<", "Waiting for</dt><dd>ONTRAPORT<")
	pseudonym := pseudonymInPage.FindString(done.Body)
	if !domain.IsPseudonym(pseudonym) {
		t.Fatalf("the answer names no pseudonym: %s", done.Body)
	}
	for _, leak := range []string{d.email, "marcus.reyes", "Marcus", "Reyes"} {
		if strings.Contains(done.Body, leak) {
			t.Errorf("the answer to the erasure shows %q", leak)
		}
	}
	if v := e.contact("acme", d.email); v.Profile != nil || len(v.Orders) != 0 {
		t.Errorf("the contact is still there: %+v", v)
	}
	if v := e.contact("acme", pseudonym); len(v.Orders) != 1 {
		t.Errorf("the order is not kept under the pseudonym: %+v", v.Orders)
	}
	wantPage(t, "contact during the erasure", e.get("acme", "/console/contact", who), http.StatusOK, "This contact is being erased",
		"/console/contact/erasure?pseudonym=")

	var entry *audit.Entry
	for _, en := range e.auditLog("acme") {
		if en.Action == audit.EraseContact {
			entry = &en
		}
	}
	if entry == nil {
		t.Fatalf("no erasure in the activity log: %+v", e.auditLog("acme"))
	}
	if entry.Target != pseudonym || !strings.Contains(entry.Actor, "signed in with a link") || !strings.Contains(entry.Actor, "203.0.113.7") ||
		strings.Contains(entry.Summary, "marcus") {
		t.Errorf("erasure entry %+v", *entry)
	}

	status := e.get("acme", "/console/contact/erasure", url.Values{"pseudonym": {pseudonym}})
	wantPage(t, "progress", status, http.StatusOK, pseudonym, "Erasure under way", "Waiting for</dt><dd>ONTRAPORT<")
	if strings.Contains(status.Body, "marcus") {
		t.Error("the progress page shows the address")
	}
	wantPage(t, "bravo reads acme's erasure", e.get("bravo", "/console/contact/erasure", url.Values{"pseudonym": {pseudonym}}),
		http.StatusOK, "No erasure is under way")
	wantPage(t, "erase the pseudonym", e.get("acme", "/console/contact/erase", url.Values{"email": {pseudonym}}), http.StatusConflict, "erased already")
}
