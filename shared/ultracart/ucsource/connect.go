package ucsource

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/oauth"
	"github.com/cartrelay/cartrelay/shared/onetime"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// The UltraCart OAuth connect flow.
//
// The connect function starts it at /oauth/ultracart/start with a single-use state bound to the
// browser (shared/oauth) and sends the browser to UltraCart's authorize URL; on the way back,
// once the state is checked, finish trades the code for tokens, finds the account bound to the
// store or binds the store to a new one (below), stores the tokens sealed in the account's
// connection record, and registers (or, on reconnect, updates) the account's UltraCart webhook.
// The schedule function polls every connection, so the backfill starts on its own. The same
// flow signs a merchant in to the console: then it only identifies the store.

func oauthFlow() *source.OAuth {
	return &source.OAuth{
		Needs:   []string{"ULTRACART_CLIENT_ID", "ULTRACART_CLIENT_SECRET"},
		Approve: "You will sign in to UltraCart and approve read access to orders, auto orders, customers, items and affiliates, and the management of one webhook.",
		SignIn:  true,
		AuthorizeURL: func(p source.ConnectPorts, redirect, state string) string {
			return OAuthClient(p.Ports, p.App).AuthorizeURL(redirect, state)
		},
		Finish: func(ctx context.Context, p source.ConnectPorts, cb source.Callback) source.Page {
			return (&flow{p: p}).finish(ctx, cb)
		},
	}
}

// OAuthClient is UltraCart's OAuth client for app, over p's HTTP client and UltraCart base URL.
func OAuthClient(p source.Ports, app source.OAuthApp) ultracartapi.OAuth {
	return ultracartapi.OAuth{BaseURL: p.APIBase[domain.UltraCart], ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		Auth: ultracartapi.ClientAuth(app.ClientAuth), HTTP: p.HTTP}
}

// flow is one callback of the flow.
type flow struct {
	p source.ConnectPorts
}

func page(status int, title, body string) source.Page {
	return source.Page{Status: status, Title: title, Body: body}
}

// finish trades the code for tokens, then connects the store or, for a console sign-in, names
// the account bound to it.
func (f *flow) finish(ctx context.Context, cb source.Callback) source.Page {
	log, again, fl := cb.Log, cb.Again, cb.Flow
	tok, err := OAuthClient(f.p.Ports, f.p.App).Exchange(ctx, cb.Code, cb.Redirect)
	f.p.Hold(tok.AccessToken, tok.RefreshToken)
	if err != nil {
		log.Warn("oauth token exchange failed", slog.Any("error", err))
		why := ""
		if errors.Is(err, ultracartapi.ErrInvalidGrant) {
			// UltraCart's approval code works once, for a few minutes: a page left open too
			// long, or a callback opened twice, ends here.
			why = `<p>UltraCart's approval is good for a few minutes and for one use only, so it has probably expired. Start again and approve without a long pause.</p>`
		}
		return page(http.StatusBadGateway, "UltraCart refused the connection",
			`<p>UltraCart did not hand over access: <code>`+html.EscapeString(tokenErrorText(err))+`</code>. Nothing was changed.</p>`+why+again)
	}
	if fl.Purpose == oauth.PurposeConsole {
		return f.consoleSignedIn(ctx, log, tok, again)
	}
	return f.connected(ctx, log, tok, fl, again)
}

func tokenErrorText(err error) string {
	var te *ultracartapi.TokenError
	if errors.As(err, &te) {
		return strings.Trim(te.Code+": "+te.Description, ": ")
	}
	return err.Error()
}

// ensureAccount returns account id, bound to the store that is connecting, completing it with
// fresh webhook credentials when it has none. Existing credentials are kept, so a reconnect does
// not break deliveries already in flight.
func (f *flow) ensureAccount(ctx context.Context, id string) (accounts.Account, error) {
	// The password is registered with the store's webhook.
	acct, err := f.p.Accounts.Get(ctx, id, accounts.UltraCartWebhookPassword)
	if err != nil && !errors.Is(err, accounts.ErrNotFound) {
		return acct, err
	}
	if err == nil && acct.UltraCart.WebhookUsername != "" && acct.UltraCart.WebhookPassword.IsSet() {
		return acct, nil
	}
	user, pass, err := newWebhookCredentials()
	if err != nil {
		return acct, err
	}
	patch, err := json.Marshal(map[string]any{"ultracart": map[string]string{"webhook_username": user, "webhook_password": pass}})
	if err != nil {
		return acct, err
	}
	return f.p.Accounts.PutForStore(ctx, id, patch)
}

// saveConnection stores the tokens, replacing any earlier credentials (a simple key included),
// under the record's version guard; a concurrent writer makes it re-read and try again.
func (f *flow) saveConnection(ctx context.Context, id string, tok ultracartapi.Token) error {
	conns := f.p.Connections
	var err error
	for range 3 {
		var c connections.Connection
		// The old credentials are replaced, never opened.
		c, err = conns.Peek(ctx, id, connections.UltraCart)
		if errors.Is(err, connections.ErrNotFound) {
			c, err = connections.Connection{Account: id, Provider: connections.UltraCart}, nil
		}
		if err != nil {
			return err
		}
		c.ClearCredentials()
		c.Kind = connections.KindOAuth
		c.BaseURL = f.p.APIBase[domain.UltraCart]
		c.AccessToken, c.RefreshToken, c.SimpleKey = tok.AccessToken, tok.RefreshToken, ""
		c.ExpiresAt = time.Time{}
		if tok.ExpiresIn > 0 {
			c.ExpiresAt = f.p.Clock.Now().Add(tok.ExpiresIn)
		}
		// Connecting again is how the merchant answers a refused or disabled connection.
		c.Status, c.Problem, c.ProblemAt = "", "", time.Time{}
		if _, err = conns.Put(ctx, c); !errors.Is(err, connections.ErrConflict) {
			break
		}
	}
	if err != nil {
		return err
	}
	// Streams stopped by the old credentials carry on from where they were.
	return ucpoll.Resume(ctx, f.p.Store, id, ucpoll.Streams()...)
}

// Which account an UltraCart store may act for.
//
// An account is bound to one store (accounts.Binding). A store that connects, or signs in to
// the console, acts for the account bound to it and for no other, whatever the account's id
// looks like. UltraCart's token answer does not say which store granted access, so the store is
// recognised by what its own webhooks show, two documented ways:
//
//   - the merchant_id of a Webhook object ("the UltraCart merchant ID that owns this webhook"),
//     from the store's webhook listing or from the answer to inserting cartrelay's webhook;
//   - failing that, a webhook of the store that carries a bound account's webhook URL and its
//     Basic credentials, which cartrelay hands to that account's store only.
//
// UltraCart documents both fields but not that it always fills them in, so cartrelay works
// with either: a binding made without a merchant id learns it when UltraCart first names it.
// An account's webhook credentials go to a store only once the store is bound to the account;
// a store connecting for the first time gets credentials made for it.

// storeSeen is what UltraCart showed of the store that granted access.
type storeSeen struct {
	// merchant is the merchant id UltraCart named, or empty.
	merchant string
	hooks    []ultracartapi.Webhook
}

// seeStore lists the store's webhooks and collects the merchant id they (or the token) name.
func (f *flow) seeStore(ctx context.Context, api *ultracartapi.Client, tok ultracartapi.Token) (storeSeen, error) {
	hooks, err := api.ListWebhooks(ctx)
	if err != nil {
		return storeSeen{}, fmt.Errorf("list the store's webhooks: %w", err)
	}
	s := storeSeen{hooks: hooks}
	if err := s.name(tok.MerchantID); err != nil {
		return s, err
	}
	for _, h := range hooks {
		if err := s.name(h.MerchantID); err != nil {
			return s, err
		}
	}
	return s, nil
}

// name records a merchant id UltraCart gave; two different ones mean the answers cannot be
// trusted to name one store.
func (s *storeSeen) name(merchant string) error {
	switch {
	case accounts.MerchantKey(merchant) == "":
	case s.merchant == "":
		s.merchant = strings.TrimSpace(merchant)
	case accounts.MerchantKey(s.merchant) != accounts.MerchantKey(merchant):
		return fmt.Errorf("UltraCart named two different stores (%s and %s) for one sign-in", s.merchant, merchant)
	}
	return nil
}

// seen puts w, a webhook just written, in place of the listed one with its oid.
func (s *storeSeen) seen(w ultracartapi.Webhook) {
	for i := range s.hooks {
		if s.hooks[i].WebhookOID == w.WebhookOID {
			s.hooks[i] = w
			return
		}
	}
	s.hooks = append(s.hooks, w)
}

// storeName is how pages name the store.
func (s storeSeen) storeName() string {
	if s.merchant == "" {
		return "Your UltraCart store"
	}
	return "Your store <strong>" + html.EscapeString(s.merchant) + "</strong>"
}

// hookAccount is the account whose webhook URL on this deployment u is, or "".
func (f *flow) hookAccount(u string) string {
	id, ok := strings.CutPrefix(u, f.p.PublicURL("/webhooks/ultracart/"))
	if !ok || accounts.ValidateID(id) != nil {
		return ""
	}
	return id
}

// boundAccount is the binding of the account the store may act for, or an error matching
// accounts.ErrNotBound.
func (f *flow) boundAccount(ctx context.Context, s storeSeen) (accounts.Binding, error) {
	if s.merchant != "" {
		b, err := f.p.Accounts.BindingOfMerchant(ctx, s.merchant)
		if !errors.Is(err, accounts.ErrNotBound) {
			return b, err
		}
	}
	// A store may list any number of webhooks pointing at bound accounts' URLs; each check
	// opens an account's secrets, so only the first few are tried.
	tried := map[string]bool{}
	for _, h := range s.hooks {
		id := f.hookAccount(h.WebhookURL)
		if id == "" || tried[id] || len(tried) >= maxProofs {
			continue
		}
		b, err := f.p.Accounts.Binding(ctx, id)
		if errors.Is(err, accounts.ErrNotBound) {
			continue
		}
		if err != nil {
			return b, err
		}
		tried[id] = true
		if b.MerchantID != "" && s.merchant != "" && accounts.MerchantKey(b.MerchantID) != accounts.MerchantKey(s.merchant) {
			// Another store holds this account's URL; its merchant id says it is not the owner.
			continue
		}
		acct, err := f.p.Accounts.Get(ctx, id, accounts.UltraCartWebhookPassword)
		if errors.Is(err, accounts.ErrNotFound) {
			continue
		}
		if err != nil {
			return b, err
		}
		if CheckBasic(acct, h.BasicUsername, h.BasicPassword) {
			return b, nil
		}
	}
	return accounts.Binding{}, accounts.ErrNotBound
}

// maxProofs bounds the bound accounts whose webhook credentials one sign-in compares.
const maxProofs = 3

// connected finishes a connect flow: it reconnects the account bound to the store, or binds
// the store to a new account (or to the account its invite names).
func (f *flow) connected(ctx context.Context, log *slog.Logger, tok ultracartapi.Token, fl oauth.Flow, again string) source.Page {
	api := ultracartapi.New(f.p.APIBase[domain.UltraCart], ultracartapi.Credentials{BearerToken: tok.AccessToken}, f.p.HTTP)
	seen, err := f.seeStore(ctx, api, tok)
	if err != nil {
		log.Warn("oauth: store not identified", slog.Any("error", err))
		return page(http.StatusBadGateway, "Store not identified",
			`<p>cartrelay could not read your store's webhooks to tell which store granted access (`+html.EscapeString(err.Error())+`), so nothing was saved.</p>`+again)
	}
	b, err := f.boundAccount(ctx, seen)
	switch {
	case err == nil:
		return f.reconnect(ctx, log, api, tok, seen, b, fl, nil, again)
	case !errors.Is(err, accounts.ErrNotBound):
		log.Error("oauth: binding unreadable", slog.Any("error", err))
		return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not read its accounts just now. Nothing was saved.</p>`+again)
	}
	return f.bindNew(ctx, log, api, tok, seen, fl, again)
}

// invite is the invite a flow started with, checked again (it may have been used or expired
// since): nil without one; a page to answer when it cannot be used.
func (f *flow) invite(ctx context.Context, fl oauth.Flow) (*onetime.Ticket, *source.Page) {
	if fl.Invite == "" {
		return nil, nil
	}
	tk, err := onetime.New(f.p.Store, f.p.Clock).CheckRef(ctx, onetime.Invite, fl.Invite)
	if err != nil {
		resp := f.p.InvitePage(err, tk)
		return nil, &resp
	}
	return &tk, nil
}

// bindNew binds a store no account has yet to a new account. When UltraCart has not named the
// store, cartrelay's webhook is registered first, with credentials made for this connection,
// because the answer to that insert carries the store's merchant id.
//
// Where invites are required, a store without one is refused; when UltraCart has not named it,
// only after the webhook insert has shown whether it is a bound store (whose reconnect needs no
// invite), and then that webhook is removed again.
func (f *flow) bindNew(ctx context.Context, log *slog.Logger, api *ultracartapi.Client, tok ultracartapi.Token, seen storeSeen, fl oauth.Flow, again string) source.Page {
	inv, refused := f.invite(ctx, fl)
	if refused != nil {
		return *refused
	}
	mayBind := inv != nil || !f.p.RequiresInvite
	if !mayBind && seen.merchant != "" {
		log.Warn("oauth: new store without an invite", slog.String("merchant_id", seen.merchant))
		return f.p.InviteNeeded(`<p>Nothing was changed.</p>`)
	}
	user, pass, err := newWebhookCredentials()
	if err != nil {
		log.Error("oauth: credentials", slog.Any("error", err))
		return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not prepare your account just now. Nothing was saved.</p>`+again)
	}
	var probe *ultracartapi.Webhook
	target := ""
	if inv != nil {
		target = inv.Account
	}
	if seen.merchant == "" {
		if target == "" {
			if target, err = newStoreID(); err != nil {
				log.Error("oauth: account id", slog.Any("error", err))
				return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not prepare your account just now. Nothing was saved.</p>`+again)
			}
		}
		w, err := f.putHook(ctx, api, seen, target, user, pass, nil)
		if err != nil {
			log.Warn("oauth: webhook not registered", slog.Any("error", err))
			return page(http.StatusBadGateway, "Store not identified",
				`<p>UltraCart did not say which store granted access, and registering cartrelay's webhook, whose answer names the store, failed: <code>`+
					html.EscapeString(err.Error())+`</code>. Nothing was saved.</p>`+again)
		}
		probe = &w
		seen.seen(w)
		if err := seen.name(w.MerchantID); err != nil {
			return f.unbindable(ctx, log, api, probe, err, again)
		}
		if seen.merchant != "" {
			// The store may be bound already (its webhook had been removed): then this is a
			// reconnect, and the webhook just made becomes that account's.
			b, err := f.p.Accounts.BindingOfMerchant(ctx, seen.merchant)
			if err == nil {
				return f.reconnect(ctx, log, api, tok, seen, b, fl, probe, again)
			}
			if !errors.Is(err, accounts.ErrNotBound) {
				return f.unbindable(ctx, log, api, probe, err, again)
			}
		}
		if !mayBind {
			log.Warn("oauth: new store without an invite", slog.String("merchant_id", seen.merchant))
			return f.unbindable(ctx, log, api, probe, errNoInvite, again)
		}
	}
	if seen.merchant != "" && (inv == nil || inv.Account == "") {
		if target, err = f.freeStoreID(ctx, seen.merchant); err != nil {
			return f.unbindable(ctx, log, api, probe, err, again)
		}
	}
	log = log.With(slog.String("account", target))
	var useInvite []store.Write
	if inv != nil {
		w, _ := onetime.New(f.p.Store, f.p.Clock).UseWrite(*inv)
		useInvite = append(useInvite, w)
	}
	if err := f.p.Accounts.Bind(ctx, accounts.Binding{Account: target, MerchantID: seen.merchant}, useInvite...); err != nil {
		if inv != nil && inv.Account != "" && errors.Is(err, accounts.ErrAccountBound) {
			err = errInvitedAccountBound
		} else if inv != nil && errors.Is(err, store.ErrConditionFailed) && !errors.Is(err, accounts.ErrStoreBound) && !errors.Is(err, accounts.ErrAccountBound) {
			err = onetime.ErrUsed
		}
		return f.unbindable(ctx, log, api, probe, err, again)
	}
	var acct accounts.Account
	if inv != nil && inv.Account != "" {
		// The operator's account keeps its webhook credentials; it gets some if it had none.
		acct, err = f.ensureAccount(ctx, target)
	} else {
		var patch []byte
		if patch, err = json.Marshal(map[string]any{"ultracart": map[string]string{"webhook_username": user, "webhook_password": pass}}); err == nil {
			acct, err = f.p.Accounts.PutForStore(ctx, target, patch)
		}
	}
	if err != nil {
		log.Error("oauth: account not stored", slog.Any("error", err))
		return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not save your account just now. Connect again to finish.</p>`+again)
	}
	log.Info("ultracart store bound", slog.String("merchant_id", seen.merchant))
	return f.finishConnect(ctx, log, api, tok, seen, acct, probe, again)
}

// unbindable answers a failed binding, removing the webhook made to learn the store (which
// would otherwise deliver to an account that does not exist).
func (f *flow) unbindable(ctx context.Context, log *slog.Logger, api *ultracartapi.Client, probe *ultracartapi.Webhook, err error, again string) source.Page {
	if probe != nil {
		if derr := api.DeleteWebhook(ctx, probe.WebhookOID); derr != nil {
			log.Warn("oauth: webhook made to identify the store not removed; the next connect reuses it", slog.Any("error", derr))
		}
	}
	switch {
	case errors.Is(err, errNoInvite):
		return f.p.InviteNeeded(`<p>Nothing was changed.</p>`)
	case errors.Is(err, onetime.ErrUsed):
		log.Warn("oauth: invite used meanwhile")
		return f.p.InvitePage(err, onetime.Ticket{})
	case errors.Is(err, errInvitedAccountBound):
		log.Warn("oauth: the invited account is bound to another store")
		return page(http.StatusConflict, "Account already connected",
			`<p>The account this invite is for is already connected to another UltraCart store, so cartrelay did not connect yours to it. Nothing was changed; the invite was not used.</p>
<p>Ask whoever runs this cartrelay about it.</p>`)
	}
	if errors.Is(err, accounts.ErrStoreBound) || errors.Is(err, accounts.ErrAccountBound) {
		log.Warn("oauth: binding raced", slog.Any("error", err))
		return page(http.StatusConflict, "Connected elsewhere at the same moment",
			`<p>Another connection of this store finished while this one was running, so this one changed nothing. Connect again to update it.</p>`+again)
	}
	log.Error("oauth: store not bound", slog.Any("error", err))
	return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not save your account just now. Nothing was saved.</p>`+again)
}

// reconnect renews the connection of b's account, bound to the store that just granted access;
// probe is a webhook made for this connect before the store was recognised.
func (f *flow) reconnect(ctx context.Context, log *slog.Logger, api *ultracartapi.Client, tok ultracartapi.Token, seen storeSeen, b accounts.Binding,
	fl oauth.Flow, probe *ultracartapi.Webhook, again string) source.Page {
	log = log.With(slog.String("account", b.Account))
	if inv, _ := f.invite(ctx, fl); inv != nil && inv.Account != "" && inv.Account != b.Account {
		// An invite for one account must not connect its holder's store to another: say so,
		// and leave both (and the invite) as they were.
		log.Warn("oauth: invite for another account than the store's", slog.String("invited", inv.Account))
		if probe != nil {
			if err := api.DeleteWebhook(ctx, probe.WebhookOID); err != nil {
				log.Warn("oauth: webhook made to identify the store not removed", slog.Any("error", err))
			}
		}
		return page(http.StatusConflict, "Store connected to another account",
			`<p>`+seen.storeName()+` is already connected to the cartrelay account <code>`+html.EscapeString(b.Account)+`</code>, not to <code>`+
				html.EscapeString(inv.Account)+`</code>, the account this invite is for. Nothing was changed; the invite was not used.</p>`+again)
	}
	if seen.merchant != "" && b.MerchantID == "" {
		if err := f.p.Accounts.NameMerchant(ctx, b.Account, seen.merchant); err != nil {
			return f.unbindable(ctx, log, api, probe, err, again)
		}
		log.Info("ultracart store named", slog.String("merchant_id", seen.merchant))
	}
	acct, err := f.ensureAccount(ctx, b.Account)
	if err != nil {
		log.Error("oauth: account not stored", slog.Any("error", err))
		return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not save your account just now.</p>`+again)
	}
	return f.finishConnect(ctx, log, api, tok, seen, acct, probe, again)
}

// finishConnect stores the tokens on acct, bound to the store, and gives the store acct's
// webhook.
func (f *flow) finishConnect(ctx context.Context, log *slog.Logger, api *ultracartapi.Client, tok ultracartapi.Token, seen storeSeen, acct accounts.Account,
	probe *ultracartapi.Webhook, again string) source.Page {
	id := acct.ID
	store := seen.storeName()
	if err := f.saveConnection(ctx, id, tok); err != nil {
		log.Error("oauth: connection not stored", slog.Any("error", err))
		return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not save the connection just now.</p>`+again)
	}
	log.Info("ultracart connected", slog.String("merchant_id", seen.merchant))
	hookURL := f.p.PublicURL("/webhooks/ultracart/" + id)
	if _, err := f.putHook(ctx, api, seen, id, acct.UltraCart.WebhookUsername, acct.UltraCart.WebhookPassword.Reveal(), probe); err != nil {
		log.Warn("oauth: webhook not registered", slog.Any("error", err))
		return page(http.StatusBadGateway, "Connected, but the webhook is missing",
			`<p>`+store+` is connected as account <code>`+html.EscapeString(id)+`</code> and the connection is saved, so cartrelay will poll UltraCart for orders.</p>
<p>Registering the webhook failed: <code>`+html.EscapeString(err.Error())+`</code>. Connect again to retry; until then new orders arrive with polling's delay rather than at once.</p>`+again)
	}
	log.Info("ultracart webhook registered", slog.String("webhook_url", hookURL))
	return page(http.StatusOK, "UltraCart connected",
		`<p>`+store+` is connected as account <code>`+html.EscapeString(id)+`</code>.</p>
<p>UltraCart now sends events to <code>`+html.EscapeString(hookURL)+`</code>, authenticated with credentials only cartrelay and UltraCart know.</p>
<p>What happens next: the backfill starts on its own. Within a minute or two the poller picks up the new connection and loads your order history in the background, and new orders arrive through the webhook as they happen.</p>`)
}

// putHook gives the store account's webhook with these credentials: it updates the store's
// webhook already at the account's URL, else one of cartrelay's webhooks that points at no
// account (left by an interrupted connect), else inserts one. fresh is a webhook written
// earlier in this request; when it is already exactly this one, nothing is sent.
func (f *flow) putHook(ctx context.Context, api *ultracartapi.Client, seen storeSeen, account, user, pass string, fresh *ultracartapi.Webhook) (ultracartapi.Webhook, error) {
	// A quarter of headroom covers the delivery envelope around the events UltraCart counts.
	maxSize := f.p.MaxBodyBytes * 3 / 4
	want := ultracartapi.HubWebhook(f.p.PublicURL("/webhooks/ultracart/"+account), user, pass, maxSize)
	var reuse *ultracartapi.Webhook
	for i, h := range seen.hooks {
		if h.WebhookOID != 0 && h.WebhookURL == want.WebhookURL {
			reuse = &seen.hooks[i]
			break
		}
	}
	if reuse == nil {
		for i, h := range seen.hooks {
			if other := f.hookAccount(h.WebhookURL); h.WebhookOID != 0 && other != "" && !f.accountExists(ctx, other) {
				reuse = &seen.hooks[i]
				break
			}
		}
	}
	if reuse == nil {
		return api.InsertWebhook(ctx, want)
	}
	if fresh != nil && fresh.WebhookOID == reuse.WebhookOID && fresh.WebhookURL == want.WebhookURL &&
		fresh.BasicUsername == user && fresh.BasicPassword == pass {
		return *fresh, nil
	}
	want.WebhookOID = reuse.WebhookOID
	return api.UpdateWebhook(ctx, want)
}

func (f *flow) accountExists(ctx context.Context, id string) bool {
	_, err := f.p.Accounts.Get(ctx, id)
	return !errors.Is(err, accounts.ErrNotFound)
}

// freeStoreID is the id for a new account of merchant: oauth.AccountID's, or with a number
// behind it when that is taken (two merchant ids can fold to one name).
func (f *flow) freeStoreID(ctx context.Context, merchant string) (string, error) {
	base, err := oauth.AccountID(merchant)
	if err != nil {
		return newStoreID()
	}
	for n := 1; n <= 9; n++ {
		id := base
		if n > 1 {
			suffix := "-" + strconv.Itoa(n)
			id = strings.TrimRight(base[:min(len(base), 63-len(suffix))], "-") + suffix
		}
		if _, err := f.p.Accounts.Binding(ctx, id); !errors.Is(err, accounts.ErrNotBound) {
			if err != nil {
				return "", err
			}
			continue
		}
		if !f.accountExists(ctx, id) {
			return id, nil
		}
	}
	return newStoreID()
}

// Reasons a binding is refused, answered by unbindable.
var (
	errNoInvite            = errors.New("a new store needs an invite")
	errInvitedAccountBound = errors.New("the invited account is bound to another store")
)

// newStoreID is a random id in the connected stores' id space, for a store UltraCart has not
// named.
func newStoreID() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random account id: %w", err)
	}
	return accounts.StorePrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)), nil
}

// newWebhookCredentials are fresh HTTP Basic credentials for an account's UltraCart webhook.
func newWebhookCredentials() (user, pass string, err error) {
	if user, err = oauth.RandomToken(9); err != nil {
		return "", "", err
	}
	if pass, err = oauth.RandomToken(32); err != nil {
		return "", "", err
	}
	return "uc-" + user, pass, nil
}

// consoleSignedIn names the account bound to the store UltraCart just authorized, for the
// console to sign the browser in to. It writes nothing to UltraCart or to the account.
func (f *flow) consoleSignedIn(ctx context.Context, log *slog.Logger, tok ultracartapi.Token, again string) source.Page {
	api := ultracartapi.New(f.p.APIBase[domain.UltraCart], ultracartapi.Credentials{BearerToken: tok.AccessToken}, f.p.HTTP)
	seen, err := f.seeStore(ctx, api, tok)
	if err != nil {
		log.Warn("console sign-in: store not identified", slog.Any("error", err))
		return page(http.StatusBadGateway, "Store not identified",
			`<p>cartrelay could not read your store's webhooks to tell which store you signed in with (`+html.EscapeString(err.Error())+`).</p>`+again)
	}
	b, err := f.boundAccount(ctx, seen)
	if errors.Is(err, accounts.ErrNotBound) {
		log.Info("console sign-in: no account bound to the store", slog.String("merchant_id", seen.merchant))
		connect := html.EscapeString(f.p.PublicURL("/connect"))
		body := `<p>` + seen.storeName() + ` has no cartrelay account, so there is nothing to show. Nothing was changed.</p>
<p>To create one, <a href="` + connect + `">connect the store</a>. If whoever runs this cartrelay set up your account for you, ask them for a console sign-in link (<code>cartrelay console link ACCOUNT</code>).</p>`
		if seen.merchant == "" {
			// UltraCart names a store only through its webhooks; without cartrelay's there is
			// nothing to recognise it by.
			body = `<p>cartrelay could not tell which store you signed in with: UltraCart names a store to cartrelay only through the store's webhooks, and yours has none that cartrelay knows. Nothing was changed.</p>
<p>If your store was connected before and cartrelay's webhook was removed from it, <a href="` + connect + `">connecting again</a> restores it. If whoever runs this cartrelay set up your account for you, ask them for a console sign-in link (<code>cartrelay console link ACCOUNT</code>).</p>`
		}
		return page(http.StatusForbidden, "No account for this store", body)
	}
	if err != nil {
		log.Error("console sign-in: binding unreadable", slog.Any("error", err))
		return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not read its accounts just now.</p>`+again)
	}
	return source.Page{SignIn: b.Account}
}
