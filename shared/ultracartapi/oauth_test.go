package ultracartapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/ultracartapi"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
)

func authorize(t *testing.T, o ultracartapi.OAuth) string {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(o.AuthorizeURL("https://hub.example.com/cb", "st"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || back.Query().Get("state") != "st" || back.Query().Get("code") == "" {
		t.Fatalf("authorize redirected to %q", resp.Header.Get("Location"))
	}
	return back.Query().Get("code")
}

func TestAuthorizeURL(t *testing.T) {
	o := ultracartapi.OAuth{ClientID: "cid"}
	u, err := url.Parse(o.AuthorizeURL("https://hub.example.com/cb", "st"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Host != "secure.ultracart.com" || u.Path != "/rest/v2/oauth/authorize" || q.Get("response_type") != "code" ||
		q.Get("client_id") != "cid" || q.Get("redirect_uri") != "https://hub.example.com/cb" || q.Get("state") != "st" ||
		q.Get("scope") != ultracartapi.Scope {
		t.Errorf("authorize URL %s", u)
	}
}

func TestExchangeAndRefreshBothSecretTransports(t *testing.T) {
	for _, auth := range []ultracartapi.ClientAuth{ultracartapi.ClientAuthBasic, ultracartapi.ClientAuthPost} {
		t.Run(string(auth), func(t *testing.T) {
			fake := ultracartfake.New(ultracartfake.Options{ClientID: "cid", ClientSecret: "s&c:ret", ClientAuth: auth,
				MerchantID: "DEMO", TokenTTL: 2 * time.Hour})
			defer fake.Close()
			o := ultracartapi.OAuth{BaseURL: fake.URL, ClientID: "cid", ClientSecret: "s&c:ret", Auth: auth}
			ctx := context.Background()
			tok, err := o.Exchange(ctx, authorize(t, o), "https://hub.example.com/cb")
			if err != nil {
				t.Fatal(err)
			}
			if tok.ExpiresIn != 2*time.Hour || tok.RefreshToken == "" || !fake.ValidAccessToken(tok.AccessToken) {
				t.Errorf("token %+v", tok)
			}
			next, err := o.Refresh(ctx, tok.RefreshToken)
			if err != nil || next.RefreshToken == tok.RefreshToken {
				t.Fatalf("refresh: %+v, %v", next, err)
			}
			// The used refresh token is spent.
			if _, err := o.Refresh(ctx, tok.RefreshToken); !errors.Is(err, ultracartapi.ErrInvalidGrant) {
				t.Errorf("reused refresh token: %v", err)
			}
			// The other transport is refused.
			wrong := o
			wrong.Auth = map[ultracartapi.ClientAuth]ultracartapi.ClientAuth{ultracartapi.ClientAuthBasic: ultracartapi.ClientAuthPost,
				ultracartapi.ClientAuthPost: ultracartapi.ClientAuthBasic}[auth]
			var te *ultracartapi.TokenError
			if _, err := wrong.Exchange(ctx, authorize(t, o), "https://hub.example.com/cb"); !errors.As(err, &te) ||
				te.Status != http.StatusUnauthorized || te.Code != "invalid_client" {
				t.Errorf("wrong secret transport: %v", err)
			}
		})
	}
}

func TestTokenErrorFromUltraCartErrorBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("UC-REST-ERROR", "application disabled")
		w.WriteHeader(http.StatusGone)
		_, _ = w.Write([]byte(`{"error":{"developer_message":"dev","user_message":"Application disabled"},"success":false}`))
	}))
	defer srv.Close()
	_, err := ultracartapi.OAuth{BaseURL: srv.URL, ClientID: "cid"}.Exchange(context.Background(), "c", "https://x/cb")
	var te *ultracartapi.TokenError
	if !errors.As(err, &te) || te.Status != http.StatusGone || te.Description != "Application disabled" {
		t.Errorf("got %v", err)
	}
}

func TestWebhookInsertListUpdate(t *testing.T) {
	fake := ultracartfake.New(ultracartfake.Options{BearerToken: "tok", MerchantID: "DEMO"})
	defer fake.Close()
	c := ultracartapi.New(fake.URL, ultracartapi.Credentials{BearerToken: "tok"}, nil)
	ctx := context.Background()
	w := ultracartapi.HubWebhook("https://hub.example.com/webhooks/ultracart/demo", "u", "p", 3<<20)
	created, err := c.InsertWebhook(ctx, w)
	if err != nil || created.WebhookOID == 0 || created.MerchantID != "DEMO" {
		t.Fatalf("insert: %+v, %v", created, err)
	}
	list, err := c.ListWebhooks(ctx)
	if err != nil || len(list) != 1 || list[0].WebhookURL != w.WebhookURL || len(list[0].Events()) != len(w.Events()) {
		t.Fatalf("list: %+v, %v", list, err)
	}
	created.BasicPassword = "p2"
	if _, err := c.UpdateWebhook(ctx, created); err != nil {
		t.Fatal(err)
	}
	if hooks := fake.Webhooks(); len(hooks) != 1 || hooks[0].BasicPassword != "p2" {
		t.Errorf("after update: %+v", hooks)
	}
	if _, err := c.UpdateWebhook(ctx, w); !errors.Is(err, ultracartapi.ErrBadRequest) {
		t.Errorf("update without an oid: %v", err)
	}
}

// The fake's token answer must be UltraCart's documented OauthTokenResponse and no more: a
// client that relied on an extra field (a merchant id) would pass against the fake and fail
// against UltraCart.
func TestFakeTokenAnswerIsTheDocumentedOne(t *testing.T) {
	fake := ultracartfake.New(ultracartfake.Options{ClientID: "cid", ClientSecret: "sec", MerchantID: "DEMO"})
	defer fake.Close()
	o := ultracartapi.OAuth{BaseURL: fake.URL, ClientID: "cid", ClientSecret: "sec"}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {authorize(t, o)}, "redirect_uri": {"https://hub.example.com/cb"}, "client_id": {"cid"}}
	req, _ := http.NewRequest(http.MethodPost, fake.URL+"/rest/v2/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cid", "sec")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{"access_token": true, "refresh_token": true, "expires_in": true, "scope": true, "token_type": true}
	for k := range body {
		if !documented[k] {
			t.Errorf("the token answer has %q, which UltraCart does not document", k)
		}
	}
	if _, isString := body["expires_in"].(string); !isString {
		t.Errorf("expires_in is %T, UltraCart documents a string", body["expires_in"])
	}
}

func TestFakeWebhooksBelongToTheirStore(t *testing.T) {
	fake := ultracartfake.New(ultracartfake.Options{ClientID: "cid", ClientSecret: "sec", MerchantID: "AAA"})
	defer fake.Close()
	o := ultracartapi.OAuth{BaseURL: fake.URL, ClientID: "cid", ClientSecret: "sec"}
	ctx := context.Background()
	client := func(merchant string) *ultracartapi.Client {
		fake.SignInAs(merchant)
		tok, err := o.Exchange(ctx, authorize(t, o), "https://hub.example.com/cb")
		if err != nil {
			t.Fatal(err)
		}
		return ultracartapi.New(fake.URL, ultracartapi.Credentials{BearerToken: tok.AccessToken}, nil)
	}
	a, b := client("AAA"), client("BBB")
	if hooks, err := a.ListWebhooks(ctx); err != nil || len(hooks) != 0 {
		t.Fatalf("a new store has webhooks: %+v, %v", hooks, err)
	}
	// A basic webhook without credentials gets generated ones, returned in the answer.
	w := ultracartapi.HubWebhook("https://hub.example.com/webhooks/ultracart/x", "", "", 3<<20)
	created, err := a.InsertWebhook(ctx, w)
	if err != nil || created.MerchantID != "AAA" || created.BasicUsername == "" || created.BasicPassword == "" {
		t.Fatalf("insert: %+v, %v", created, err)
	}
	if hooks, err := b.ListWebhooks(ctx); err != nil || len(hooks) != 0 {
		t.Errorf("store BBB sees %+v, %v", hooks, err)
	}
	var se *ultracartapi.StatusError
	if err := b.DeleteWebhook(ctx, created.WebhookOID); !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Errorf("store BBB deleted AAA's webhook: %v", err)
	}
	if err := a.DeleteWebhook(ctx, created.WebhookOID); err != nil {
		t.Fatal(err)
	}
	if hooks := fake.Webhooks(); len(hooks) != 0 {
		t.Errorf("after the delete: %+v", hooks)
	}
}
