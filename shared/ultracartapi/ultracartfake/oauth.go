package ultracartfake

import (
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
type oauthState struct {
	codes    map[string]string    // code -> redirect_uri it was issued for; removed on use
	access   map[string]time.Time // access token -> expiry
	refresh  map[string]bool      // refresh tokens still valid
	issued   int
	rotated  int
	deny     bool
	consent  bool
	tokenErr string

	webhooks    []ultracartapi.Webhook
	nextOID     int
	webhookFail string
}

func newOAuthState() oauthState {
	return oauthState{codes: map[string]string{}, access: map[string]time.Time{}, refresh: map[string]bool{}, nextOID: 1000}
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

// Webhooks returns the merchant's webhooks as stored.
func (s *Server) Webhooks() []ultracartapi.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ultracartapi.Webhook(nil), s.oauth.webhooks...)
}

// ValidAccessToken reports whether tok is an issued, unexpired access token.
func (s *Server) ValidAccessToken(tok string) bool {
	return s.issuedAccess("Bearer "+tok, s.opt.Clock.Now())
}

func (s *Server) issuedAccess(auth string, now time.Time) bool {
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.oauth.access[tok]
	return ok && now.Before(exp)
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
	consent := s.oauth.consent
	s.mu.Unlock()
	if consent && r.Method != http.MethodPost {
		s.consentPage(w, q)
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
		s.oauth.codes[code] = redirect
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
func (s *Server) consentPage(w http.ResponseWriter, q url.Values) {
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
</form></body></html>`, html.EscapeString(s.opt.ClientID), html.EscapeString(s.opt.MerchantID), html.EscapeString(q.Get("scope")), hidden.String())
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

// grant applies one token request to the fake's state.
func (s *Server) grant(f url.Values) (out map[string]string, status int, code, desc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.oauth.tokenErr != "" {
		return nil, http.StatusBadRequest, "invalid_grant", s.oauth.tokenErr
	}
	switch f.Get("grant_type") {
	case "authorization_code":
		redirect, ok := s.oauth.codes[f.Get("code")]
		if !ok || redirect != f.Get("redirect_uri") {
			return nil, http.StatusBadRequest, "invalid_grant", "unknown, used or mismatched authorization code"
		}
		delete(s.oauth.codes, f.Get("code"))
	case "refresh_token":
		if !s.oauth.refresh[f.Get("refresh_token")] {
			return nil, http.StatusBadRequest, "invalid_grant", "unknown or already used refresh token"
		}
		delete(s.oauth.refresh, f.Get("refresh_token"))
		s.oauth.rotated++
	default:
		return nil, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"
	}
	s.oauth.issued++
	access := fmt.Sprintf("at-%d", s.oauth.issued)
	refresh := fmt.Sprintf("rt-%d", s.oauth.issued)
	s.oauth.access[access] = s.opt.Clock.Now().Add(s.opt.TokenTTL)
	s.oauth.refresh[refresh] = true
	out = map[string]string{"access_token": access, "refresh_token": refresh, "token_type": "bearer",
		"expires_in": strconv.Itoa(int(s.opt.TokenTTL.Seconds())), "scope": ultracartapi.Scope}
	if !s.opt.OmitMerchantID {
		out["merchant_id"] = s.opt.MerchantID
	}
	return out, http.StatusOK, "", ""
}

// webhooks serves the webhook management API: list, insert and update.
func (s *Server) webhooks(r *http.Request, body []byte) (int, string) {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/rest/v2/webhook/webhooks"), "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case rest == "" && r.Method == http.MethodGet:
		list := s.oauth.webhooks
		if list == nil {
			list = []ultracartapi.Webhook{}
		}
		n := len(list)
		b, _ := json.Marshal(map[string]any{"webhooks": list, "success": true,
			"metadata": map[string]any{"result_set": ultracartapi.ResultSet{Count: n, Limit: n, NextOffset: n, TotalRecords: &n}}})
		return http.StatusOK, string(b)
	case rest == "" && r.Method == http.MethodPost, rest != "" && r.Method == http.MethodPut:
		if s.oauth.webhookFail != "" {
			return http.StatusInternalServerError, s.oauth.webhookFail
		}
		var wh ultracartapi.Webhook
		if err := json.Unmarshal(body, &wh); err != nil || wh.WebhookURL == "" {
			return http.StatusBadRequest, "a webhook needs a webhook_url"
		}
		wh.MerchantID = s.opt.MerchantID
		if rest == "" {
			s.oauth.nextOID++
			wh.WebhookOID = s.oauth.nextOID
			s.oauth.webhooks = append(s.oauth.webhooks, wh)
		} else {
			oid, _ := strconv.Atoi(rest)
			i := s.webhookIndex(oid)
			if i < 0 {
				return http.StatusNotFound, "no such webhook"
			}
			wh.WebhookOID = oid
			s.oauth.webhooks[i] = wh
		}
		b, _ := json.Marshal(map[string]any{"webhook": wh, "success": true})
		return http.StatusOK, string(b)
	}
	return http.StatusNotFound, "not implemented by the fake"
}

func (s *Server) webhookIndex(oid int) int {
	for i, w := range s.oauth.webhooks {
		if w.WebhookOID == oid {
			return i
		}
	}
	return -1
}
