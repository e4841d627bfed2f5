package ultracartapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
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
			if tok.ExpiresIn != 2*time.Hour || tok.MerchantID != "DEMO" || tok.RefreshToken == "" || !fake.ValidAccessToken(tok.AccessToken) {
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
