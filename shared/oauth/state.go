// Package oauth holds the provider-independent parts of cartrelay's OAuth connect flow: the
// single-use state that ties a callback to the browser that started it, the cookie carrying
// that browser's nonce, and the rotation of refresh tokens under the connection record's
// version guard.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/store"
)

// StateTTL is how long a started flow may take to come back. UltraCart's own authorize URLs
// expire, and a short window limits what a leaked state is worth.
const StateTTL = 10 * time.Minute

// Errors of Consume. Each means the callback must not be trusted, and nothing is stored.
var (
	// ErrUnknownState: no such state, or it expired, or it was already used.
	ErrUnknownState = errors.New("oauth: unknown, expired or already used state")
	// ErrNoCookie: the browser did not send the nonce cookie (another browser, or cookies off).
	ErrNoCookie = errors.New("oauth: the browser sent no sign-in cookie")
	// ErrNonceMismatch: the cookie belongs to another flow than the state.
	ErrNonceMismatch = errors.New("oauth: the sign-in cookie does not match the state")
)

// States stores pending flows: item pk "ST#<sha256 of state>", sk "-", with a TTL. Only the
// hash of the state and of the browser nonce are stored, so a read of the table cannot
// complete anyone's flow.
type States struct {
	st  store.Store
	clk clock.Clock
}

// NewStates returns the state store over st.
func NewStates(st store.Store, clk clock.Clock) *States {
	if clk == nil {
		clk = clock.System{}
	}
	return &States{st: st, clk: clk}
}

type stateDoc struct {
	Provider string `json:"provider"`
	// Purpose says what the flow is for (PurposeConnect when empty), so one registered
	// redirect URI serves both connecting a store and signing in to the console.
	Purpose string `json:"purpose,omitempty"`
	// Invite names (by its hash, onetime.Ref) the operator's invite the flow was started with.
	Invite      string    `json:"invite,omitempty"`
	NonceSHA256 string    `json:"nonce_sha256"`
	CreatedAt   time.Time `json:"created_at"`
}

// Pending is a started flow: State goes to the provider, Nonce into the browser's cookie.
type Pending struct {
	State string
	Nonce string
}

// Purposes of a flow.
const (
	PurposeConnect = "connect"
	PurposeConsole = "console"
)

// Begin starts a flow for provider that connects a store.
func (s *States) Begin(ctx context.Context, provider string) (Pending, error) {
	return s.BeginFor(ctx, provider, PurposeConnect)
}

// Flow is what a started flow is for, handed back when it is consumed.
type Flow struct {
	Purpose string
	// Invite is onetime.Ref of the invite the flow started with, or empty.
	Invite string
}

// BeginFor starts a flow for provider with purpose, which ConsumeFor hands back.
func (s *States) BeginFor(ctx context.Context, provider, purpose string) (Pending, error) {
	return s.BeginFlow(ctx, provider, Flow{Purpose: purpose})
}

// BeginFlow starts a flow for provider, which ConsumeFlow hands back.
func (s *States) BeginFlow(ctx context.Context, provider string, f Flow) (Pending, error) {
	state, err := RandomToken(32)
	if err != nil {
		return Pending{}, err
	}
	nonce, err := RandomToken(32)
	if err != nil {
		return Pending{}, err
	}
	now := s.clk.Now()
	data, err := json.Marshal(stateDoc{Provider: provider, Purpose: f.Purpose, Invite: f.Invite, NonceSHA256: hash(nonce), CreatedAt: now})
	if err != nil {
		return Pending{}, err
	}
	it := store.Item{PK: statePK(state), SK: "-", ExpiresAt: now.Add(StateTTL), Version: 1, Data: data}
	if err := s.st.Write(ctx, store.PutItem(it, store.NotExists)); err != nil {
		return Pending{}, fmt.Errorf("store oauth state: %w", err)
	}
	return Pending{State: state, Nonce: nonce}, nil
}

// Consume checks that state is pending for provider and was started by the browser holding
// nonce, and deletes it so it cannot be used again. The delete is conditional, so of two
// callbacks racing with one state only one succeeds. A state whose nonce does not match is
// left in place, so a forged callback cannot cancel the real browser's flow.
func (s *States) Consume(ctx context.Context, provider, state, nonce string) error {
	_, err := s.ConsumeFor(ctx, provider, state, nonce)
	return err
}

// ConsumeFor is Consume that also returns the purpose the flow was begun with; a state
// stored before purposes existed is a connect flow.
func (s *States) ConsumeFor(ctx context.Context, provider, state, nonce string) (string, error) {
	f, err := s.ConsumeFlow(ctx, provider, state, nonce)
	return f.Purpose, err
}

// ConsumeFlow is Consume that also returns what the flow was begun for.
func (s *States) ConsumeFlow(ctx context.Context, provider, state, nonce string) (Flow, error) {
	if state == "" {
		return Flow{}, ErrUnknownState
	}
	if nonce == "" {
		return Flow{}, ErrNoCookie
	}
	it, err := s.st.Get(ctx, statePK(state), "-")
	if errors.Is(err, store.ErrNotFound) {
		return Flow{}, ErrUnknownState
	}
	if err != nil {
		return Flow{}, fmt.Errorf("read oauth state: %w", err)
	}
	var d stateDoc
	if err := json.Unmarshal(it.Data, &d); err != nil || d.Provider != provider {
		return Flow{}, ErrUnknownState
	}
	if subtle.ConstantTimeCompare([]byte(d.NonceSHA256), []byte(hash(nonce))) != 1 {
		return Flow{}, ErrNonceMismatch
	}
	err = s.st.Write(ctx, store.DeleteKey(store.Key{PK: it.PK, SK: it.SK}, store.Exists))
	if errors.Is(err, store.ErrConditionFailed) {
		return Flow{}, ErrUnknownState
	}
	if err != nil {
		return Flow{}, fmt.Errorf("use oauth state: %w", err)
	}
	if d.Purpose == "" {
		d.Purpose = PurposeConnect
	}
	return Flow{Purpose: d.Purpose, Invite: d.Invite}, nil
}

func statePK(state string) string { return "ST#" + hash(state) }

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// RandomToken returns n bytes from crypto/rand, base64url without padding.
func RandomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
