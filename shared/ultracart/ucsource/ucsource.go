// Package ucsource registers UltraCart as a cartrelay source (shared/source): its webhook's
// HTTP Basic authentication and splitting, normalization with the account's base currency,
// its poller (ultracart/ucpoll), its OAuth connect flow and console sign-in (connect.go), and
// the check of a key before it is saved.
package ucsource

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/ultracart"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// Registration is UltraCart's source registration.
func Registration() source.Registration {
	r := Connecting()
	r.Webhook = source.Webhook{
		// Only the webhook password is opened: the webhook function holds no other secret.
		Secrets:      []accounts.Field{accounts.UltraCartWebhookPassword},
		Allow:        http.MethodPost,
		Denied:       denied(),
		Authenticate: authenticate,
		Split:        split,
	}
	r.Normalize = normalize
	r.Events = append(ultracart.Events(), ultracart.EventAffiliate)
	r.Poller = &source.Poller{Connection: connections.UltraCart, Streams: ucpoll.Streams(), Due: ucpoll.Due, Run: run}
	return r
}

// Connecting is the part of Registration the connect function reads: the name, the label and
// the connect. Registration is built on it; the connect function takes it alone
// (sources.Connecting) so that it links no decoder or poller.
func Connecting() source.Registration {
	return source.Registration{Name: domain.UltraCart, Label: "UltraCart", Connect: source.Connect{OAuth: oauthFlow(), Check: check}}
}

func denied() source.Answer {
	return source.Answer{Status: http.StatusUnauthorized, Message: "wrong or missing webhook credentials for this account",
		Header: map[string]string{"www-authenticate": `Basic realm="cartrelay", charset="UTF-8"`}}
}

// CheckBasic reports whether user and pass are acct's webhook credentials. It takes the same
// time whichever part is wrong, and is false when none are configured. The password must have
// been opened (accounts.Repo.Get with accounts.UltraCartWebhookPassword).
func CheckBasic(acct accounts.Account, user, pass string) bool {
	return source.SecretsEqual([2]string{user, acct.UltraCart.WebhookUsername}, [2]string{pass, acct.UltraCart.WebhookPassword.Reveal()})
}

func authenticate(acct accounts.Account, d source.Delivery) error {
	user, pass, ok := basicAuth(d.Header("authorization"))
	switch {
	case !ok:
		return errors.New("no HTTP Basic credentials")
	case !CheckBasic(acct, user, pass):
		return errors.New("wrong HTTP Basic credentials")
	}
	return nil
}

func basicAuth(h string) (user, pass string, ok bool) {
	const prefix = "basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(dec), ":")
	return user, pass, ok
}

// split decodes a delivery into its events (ultracart.DecodeDelivery). An event that cannot be
// read is kept raw with its reason, so the others of the delivery still go through.
func split(d source.Delivery) ([]source.Event, error) {
	raws, err := ultracart.DecodeDelivery(d.Body)
	if errors.Is(err, ultracart.ErrTooLarge) {
		return nil, &source.Answer{Status: http.StatusRequestEntityTooLarge, Message: err.Error(),
			Reason: "compressed delivery too large once inflated: " + err.Error()}
	}
	if err != nil {
		return nil, err
	}
	evs := make([]source.Event, len(raws))
	for i, r := range raws {
		evs[i] = source.Event{Name: r.Name, Payload: r.Payload, Index: r.Index}
		if r.Err != nil {
			evs[i].Problem = r.Err.Error()
			if len(evs[i].Payload) == 0 || !json.Valid(evs[i].Payload) {
				evs[i].Payload = source.RawJSON(r.Payload)
			}
		}
	}
	return evs, nil
}

func normalize(ev source.Raw, acct accounts.Account, phone domain.PhoneFunc) ([]domain.Event, error) {
	if ev.Name == ultracart.EventAffiliate {
		// A record of the polled affiliate list: UltraCart has no affiliate webhook.
		return ultracart.NormalizeAffiliate(ev.Payload, ev.ReceivedAt)
	}
	return ultracart.NormalizeWith(ultracart.RawEvent{Index: ev.Index, Name: ev.Name, Payload: ev.Payload}, ev.ReceivedAt,
		ultracart.Options{BaseCurrency: acct.UltraCart.BaseCurrency, Phone: phone})
}

// check asks UltraCart whether conn's credentials may read the store's orders, with one cheap
// request under the account's lease and request budget (ucpoll.Engine.Check), so a key is known
// good before it is saved. A refused key or a disabled application is source.ErrRefused.
func check(ctx context.Context, p source.Ports, conn connections.Connection) error {
	eng, err := Engine(p, conn, Options(p))
	if err != nil {
		return err
	}
	err = eng.Check(ctx, conn.Account)
	if errors.Is(err, ultracartapi.ErrUnauthorized) || errors.Is(err, ultracartapi.ErrAppDisabled) {
		return source.Refused(err)
	}
	return err
}
