package source

import (
	"context"
	"errors"
	"log/slog"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/oauth"
	"github.com/cartrelay/cartrelay/shared/onetime"
)

// Connect is how a merchant connects a store of the source beyond the account file's settings:
// a sign-in at the source from the browser, and a check of credentials before they are saved.
type Connect struct {
	// OAuth is the source's sign-in from the merchant's browser (nil: it has none).
	OAuth *OAuth
	// Check asks the source's API whether conn's credentials (an API key, tokens) may read the
	// store, before they are saved. An error matching ErrRefused means the source refused them;
	// any other, that it could not be asked.
	Check func(ctx context.Context, p Ports, conn connections.Connection) error
}

// ErrRefused is matched by a Connect.Check error when the source refused the credentials.
var ErrRefused = errors.New("the source refused the credentials")

// Refused marks err as the source refusing the credentials; its text stays err's.
func Refused(err error) error { return refused{err} }

type refused struct{ error }

func (r refused) Unwrap() []error { return []error{r.error, ErrRefused} }

// OAuth is a source's authorization-code sign-in (RFC 6749). The connect function serves it at
// OAuthPath(name, OAuthStart) and OAuthPath(name, OAuthCallback) for the source named in the
// path, and does what every such flow needs: the start throttle, the single-use state bound to
// the browser by a cookie, invites, and the source's refusal. The source does the rest.
type OAuth struct {
	// Needs names the runtime settings its OAuth application takes (environment variables);
	// the flow is offered once the application's client id and the public address are set.
	Needs []string
	// Approve and After say, on the connect page, what the merchant approves at the source
	// and what cartrelay does once connected.
	Approve, After string
	// SignIn says the flow also signs a merchant in to the console (oauth.PurposeConsole).
	SignIn bool
	// AuthorizeURL is the source's page where the merchant approves; it sends the browser back
	// to redirect with state.
	AuthorizeURL func(p ConnectPorts, redirect, state string) string
	// Finish ends a flow the source sent back with a code. For oauth.PurposeConnect it connects
	// the store that granted access; for oauth.PurposeConsole it only finds the account bound to
	// that store (Page.SignIn) and writes nothing.
	Finish func(ctx context.Context, p ConnectPorts, cb Callback) Page
}

// The steps of an OAuth flow, in its paths.
const (
	OAuthStart    = "start"
	OAuthCallback = "callback"
)

// OAuthPath is where the connect function serves step of src's OAuth flow
// (/oauth/ultracart/callback): the redirect URI registered with the source's application.
func OAuthPath(src domain.Source, step string) string {
	return "/oauth/" + string(src) + "/" + step
}

// OAuthApp is the source's OAuth application this deployment signs in with.
type OAuthApp struct {
	ClientID, ClientSecret string
	// ClientAuth is how the secret reaches the token endpoint, when the source leaves it open.
	ClientAuth string
}

// ConnectPorts are what a connect flow reaches: the poll runs' ports (the store, the
// connections, the HTTP client and API base URLs), the full accounts repo (a connect binds a
// store to an account and may create it), and the runtime's settings and pages.
type ConnectPorts struct {
	Ports
	Accounts *accounts.Repo
	// App is the source's OAuth application.
	App OAuthApp
	// PublicURL is path at this deployment's public address.
	PublicURL func(path string) string
	// MaxBodyBytes is the largest webhook body the deployment takes.
	MaxBodyBytes int64
	// RequiresInvite: a store no account is bound to connects only with an operator's invite.
	RequiresInvite bool
	// Hold notes secrets the flow came to hold (tokens), so that no page shows them.
	Hold func(secrets ...string)
	// Invites are the operator's invites; Invite checks again the one a flow started with: nil
	// without one, or the page to answer when it cannot be used.
	Invites *onetime.Tickets
	Invite  func(ctx context.Context, fl oauth.Flow) (*onetime.Ticket, *Page)
	// InviteNeeded is the page for a new store that came without a required invite, with extra
	// at its end.
	InviteNeeded func(extra string) Page
	// InvitePage explains why an invite cannot be used.
	InvitePage func(err error, tk onetime.Ticket) Page
}

// Callback is a flow the source sent back with a code, once its state was checked against the
// browser's cookie.
type Callback struct {
	Code string
	// Redirect is the redirect URI the flow started with.
	Redirect string
	Flow     oauth.Flow
	Log      *slog.Logger
	// Again is a link (HTML) to start again, for the end of a page that reports a failure.
	Again string
}

// Page is an HTML page for the merchant's browser: Body is HTML, its text escaped.
type Page struct {
	Status      int
	Title, Body string
	// SignIn, on a console sign-in, is the account to sign the browser in to (no page then).
	SignIn string
}
