package ultracartfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// oauthState is what the fake's OAuth endpoints and webhook API remember; guarded by Server.mu.
// Every code and token belongs to the store whose user approved it, and each store has its own
// webhooks, so a test can connect several stores to one application.
type oauthState struct {
	codes    map[string]grant  // code -> the grant it stands for; removed on use
	access   map[string]access // access token -> its store and expiry
	refresh  map[string]string // refresh token still valid -> its store
	issued   int
	rotated  int
	deny     bool
	consent  bool
	tokenErr string
	// signedIn is the store whose user approves the next authorization (SignInAs).
	signedIn string

	webhooks    []ultracartapi.Webhook // every store's, each with its merchant_id
	nextOID     int
	webhookFail string
	// hideMerchant leaves merchant_id out of the Webhook objects the API returns.
	hideMerchant bool
}

type grant struct {
	redirect string
	merchant string
}

type access struct {
	merchant string
	expires  time.Time
}

func newOAuthState(opt Options) oauthState {
	return oauthState{codes: map[string]grant{}, access: map[string]access{}, refresh: map[string]string{},
		signedIn: opt.MerchantID, nextOID: 1000, hideMerchant: opt.OmitWebhookMerchantID}
}

// RemoveWebhook deletes the webhook oid of whichever store holds it, as its owner would.
func (s *Server) RemoveWebhook(oid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range s.oauth.webhooks {
		if w.WebhookOID == oid {
			s.oauth.webhooks = append(s.oauth.webhooks[:i], s.oauth.webhooks[i+1:]...)
			return
		}
	}
}

// OmitWebhookMerchantIDs changes Options.OmitWebhookMerchantID from now on.
func (s *Server) OmitWebhookMerchantIDs(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.hideMerchant = v
}

// AddWebhook stores w in the store merchant, as its owner would through UltraCart's own
// pages, and returns it with its oid.
func (s *Server) AddWebhook(merchant string, w ultracartapi.Webhook) ultracartapi.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.nextOID++
	w.WebhookOID, w.MerchantID = s.oauth.nextOID, merchant
	s.oauth.webhooks = append(s.oauth.webhooks, w)
	return w
}

// SignInAs makes the next authorizations come from a user of the store merchant, as when
// someone signs in to UltraCart with another store's login before approving.
func (s *Server) SignInAs(merchant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.signedIn = merchant
}

// DenyAuthorization makes the authorize endpoint redirect back with error=access_denied, as when
// the merchant clicks "Deny".
func (s *Server) DenyAuthorization(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.deny = v
}

// AskConsent makes the authorize endpoint show a consent page, as UltraCart's does, instead of
// redirecting straight back: its Approve and Deny buttons post the decision to the same endpoint,
// which then redirects back. A browser test can act between the two, as a merchant would.
func (s *Server) AskConsent(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.consent = v
}

// FailTokenRequests makes the token endpoint answer 400 invalid_grant with msg; "" stops it.
func (s *Server) FailTokenRequests(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.tokenErr = msg
}

// FailWebhookWrites makes inserting or updating a webhook answer 500 with msg; "" stops it.
func (s *Server) FailWebhookWrites(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.webhookFail = msg
}

// Rotations counts refresh-token grants that issued a new pair.
func (s *Server) Rotations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oauth.rotated
}

// Webhooks returns every store's webhooks as stored, each with the merchant_id of its store
// (whether or not the API shows it).
func (s *Server) Webhooks() []ultracartapi.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ultracartapi.Webhook(nil), s.oauth.webhooks...)
}

// WebhooksOf returns the webhooks of the store merchant.
func (s *Server) WebhooksOf(merchant string) []ultracartapi.Webhook {
	var out []ultracartapi.Webhook
	for _, w := range s.Webhooks() {
		if w.MerchantID == merchant {
			out = append(out, w)
		}
	}
	return out
}

// ValidAccessToken reports whether tok is an issued, unexpired access token.
func (s *Server) ValidAccessToken(tok string) bool {
	_, ok := s.issuedAccess("Bearer "+tok, s.opt.Clock.Now())
	return ok
}

// issuedAccess is the store an issued, unexpired access token speaks for.
func (s *Server) issuedAccess(auth string, now time.Time) (string, bool) {
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.oauth.access[tok]
	return a.merchant, ok && now.Before(a.expires)
}

func (s *Server) serveOAuth(w http.ResponseWriter, r *http.Request) {
	if s.opt.ClientID == "" {
		http.Error(w, "OAuth is not enabled on this fake", http.StatusNotFound)
		return
	}
	switch r.URL.Path {
	case "/rest/v2/oauth/authorize":
		s.authorize(w, r)
	case "/rest/v2/oauth/token":
		s.token(w, r)
	default:
		http.NotFound(w, r)
	}
}

// authorize stands in for the merchant signing in and approving. Without AskConsent it
// redirects straight back; with it, a GET shows the consent page and the POST of its form
// carries the decision.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "unreadable consent form", http.StatusBadRequest)
			return
		}
		q = r.PostForm
	}
	redirect := q.Get("redirect_uri")
	if q.Get("client_id") != s.opt.ClientID || q.Get("response_type") != "code" || redirect == "" {
		http.Error(w, "invalid authorize request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	consent, store := s.oauth.consent, s.oauth.signedIn
	s.mu.Unlock()
	if consent && r.Method != http.MethodPost {
		s.consentPage(w, q, store)
		return
	}
	back := url.Values{}
	back.Set("state", q.Get("state"))
	s.mu.Lock()
	if s.oauth.deny || (r.Method == http.MethodPost && q.Get("decision") != "approve") {
		back.Set("error", "access_denied")
	} else {
		s.oauth.issued++
		code := fmt.Sprintf("code-%d", s.oauth.issued)
		s.oauth.codes[code] = grant{redirect: redirect, merchant: s.oauth.signedIn}
		back.Set("code", code)
	}
	s.mu.Unlock()
	sep := "?"
	if strings.Contains(redirect, "?") {
		sep = "&"
	}
	// After the consent form's POST, 303 makes every browser follow with a GET.
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	http.Redirect(w, r, redirect+sep+back.Encode(), status)
}

// consentPage asks the merchant to approve the application's access.
func (s *Server) consentPage(w http.ResponseWriter, q url.Values, store string) {
	// The form carries the authorize request over to the decision it posts.
	var hidden strings.Builder
	for _, k := range []string{"client_id", "response_type", "redirect_uri", "scope", "state"} {
		if v := q.Get(k); v != "" {
			fmt.Fprintf(&hidden, `<input type="hidden" name="%s" value="%s">`, k, html.EscapeString(v))
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Authorize application</title></head><body>
<h1>Authorize application</h1>
<p>The application <strong>%s</strong> asks for access to store <strong>%s</strong>: %s.</p>
<form method="post" action="/rest/v2/oauth/authorize">%s
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></body></html>`, html.EscapeString(s.opt.ClientID), html.EscapeString(store), html.EscapeString(q.Get("scope")), hidden.String())
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		fail(http.StatusBadRequest, "invalid_request", "POST a form")
		return
	}
	f := r.PostForm
	secret := f.Get("client_secret")
	if s.opt.ClientAuth != ultracartapi.ClientAuthPost {
		user, pass, ok := r.BasicAuth()
		user, _ = url.QueryUnescape(user)
		pass, _ = url.QueryUnescape(pass)
		if !ok || user != s.opt.ClientID {
			pass = ""
		}
		secret = pass
	}
	if f.Get("client_id") != s.opt.ClientID || secret != s.opt.ClientSecret {
		fail(http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return
	}
	out, status, code, desc := s.grant(f)
	if status != http.StatusOK {
		fail(status, code, desc)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// grant applies one token request to the fake's state. The answer has exactly the fields
// UltraCart's OauthTokenResponse documents for a success: access_token, refresh_token,
// expires_in (a string of seconds), scope and token_type. It does not say which store granted
// access.
func (s *Server) grant(f url.Values) (out map[string]string, status int, code, desc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.oauth.tokenErr != "" {
		return nil, http.StatusBadRequest, "invalid_grant", s.oauth.tokenErr
	}
	var merchant string
	switch f.Get("grant_type") {
	case "authorization_code":
		g, ok := s.oauth.codes[f.Get("code")]
		if !ok || g.redirect != f.Get("redirect_uri") {
			return nil, http.StatusBadRequest, "invalid_grant", "unknown, used or mismatched authorization code"
		}
		delete(s.oauth.codes, f.Get("code"))
		merchant = g.merchant
	case "refresh_token":
		m, ok := s.oauth.refresh[f.Get("refresh_token")]
		if !ok {
			return nil, http.StatusBadRequest, "invalid_grant", "unknown or already used refresh token"
		}
		delete(s.oauth.refresh, f.Get("refresh_token"))
		s.oauth.rotated++
		merchant = m
	default:
		return nil, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"
	}
	s.oauth.issued++
	at := fmt.Sprintf("at-%d", s.oauth.issued)
	rt := fmt.Sprintf("rt-%d", s.oauth.issued)
	s.oauth.access[at] = access{merchant: merchant, expires: s.opt.Clock.Now().Add(s.opt.TokenTTL)}
	s.oauth.refresh[rt] = merchant
	out = map[string]string{"access_token": at, "refresh_token": rt, "token_type": "bearer",
		"expires_in": strconv.Itoa(int(s.opt.TokenTTL.Seconds())), "scope": ultracartapi.Scope}
	return out, http.StatusOK, "", ""
}

// webhooks serves the webhook management API of the store merchant: list, insert, update and
// delete. Each store sees only its own webhooks. Objects carry merchant_id, which UltraCart's
// Webhook model documents as "the UltraCart merchant ID that owns this webhook", unless
// OmitWebhookMerchantID; a basic webhook inserted without credentials gets random ones, which
// the answer returns, as insertWebhook documents.
func (s *Server) webhooks(r *http.Request, body []byte, merchant string) (int, string) {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/rest/v2/webhook/webhooks"), "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	show := func(w ultracartapi.Webhook) ultracartapi.Webhook {
		if s.oauth.hideMerchant {
			w.MerchantID = ""
		}
		return w
	}
	switch {
	case rest == "" && r.Method == http.MethodGet:
		list := []ultracartapi.Webhook{}
		for _, w := range s.oauth.webhooks {
			if w.MerchantID == merchant {
				list = append(list, show(w))
			}
		}
		n := len(list)
		b, _ := json.Marshal(map[string]any{"webhooks": list, "success": true,
			"metadata": map[string]any{"result_set": ultracartapi.ResultSet{Count: n, Limit: n, NextOffset: n, TotalRecords: &n}}})
		return http.StatusOK, string(b)
	case rest != "" && r.Method == http.MethodDelete:
		oid, _ := strconv.Atoi(rest)
		i := s.webhookIndex(merchant, oid)
		if i < 0 {
			return http.StatusNotFound, "no such webhook"
		}
		s.oauth.webhooks = append(s.oauth.webhooks[:i], s.oauth.webhooks[i+1:]...)
		return http.StatusNoContent, ""
	case rest == "" && r.Method == http.MethodPost, rest != "" && r.Method == http.MethodPut:
		if s.oauth.webhookFail != "" {
			return http.StatusInternalServerError, s.oauth.webhookFail
		}
		var wh ultracartapi.Webhook
		if err := json.Unmarshal(body, &wh); err != nil || wh.WebhookURL == "" {
			return http.StatusBadRequest, "a webhook needs a webhook_url"
		}
		wh.MerchantID = merchant
		if wh.AuthenticationType == "basic" && wh.BasicUsername == "" && wh.BasicPassword == "" {
			wh.BasicUsername, wh.BasicPassword = randomText(8), randomText(24)
		}
		if rest == "" {
			s.oauth.nextOID++
			wh.WebhookOID = s.oauth.nextOID
			s.oauth.webhooks = append(s.oauth.webhooks, wh)
		} else {
			oid, _ := strconv.Atoi(rest)
			i := s.webhookIndex(merchant, oid)
			if i < 0 {
				return http.StatusNotFound, "no such webhook"
			}
			wh.WebhookOID = oid
			s.oauth.webhooks[i] = wh
		}
		b, _ := json.Marshal(map[string]any{"webhook": show(wh), "success": true})
		return http.StatusOK, string(b)
	}
	return http.StatusNotFound, "not implemented by the fake"
}

func (s *Server) webhookIndex(merchant string, oid int) int {
	for i, w := range s.oauth.webhooks {
		if w.WebhookOID == oid && w.MerchantID == merchant {
			return i
		}
	}
	return -1
}

func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
