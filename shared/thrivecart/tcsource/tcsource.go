// Package tcsource registers ThriveCart as a cartrelay source (shared/source): its webhook's
// secret word, found in the body by one linear pass before anything decodes it, the splitting
// of a delivery, the normalization of webhook events and of polled transactions, and its
// poller (thrivecart/tcpoll), and the check of an API key before it is saved.
package tcsource

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/thrivecart"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcpoll"
)

// Registration is ThriveCart's source registration.
func Registration() source.Registration {
	r := Connecting()
	r.Webhook = source.Webhook{
		Secrets: []accounts.Field{accounts.ThriveCartSecretWord},
		// ThriveCart checks a new webhook URL with HEAD (and GET on some accounts) before
		// saving it.
		Probes:           []string{http.MethodHead, http.MethodGet},
		Allow:            "POST, HEAD",
		CredentialInBody: true,
		Denied: source.Answer{Status: http.StatusUnauthorized,
			Message: "unknown account, or a wrong or missing secret word; check the webhook URL and that the secret word in ThriveCart (Settings > API & webhooks) is the account's thrivecart.secret"},
		Authenticate: authenticate,
		Split:        split,
	}
	r.Normalize = normalize
	// Polled transactions travel under their own name (thrivecart.EventTransaction).
	r.Events = append(thrivecart.Events(), thrivecart.EventTransaction)
	r.Poller = &source.Poller{Streams: []string{tcpoll.Stream},
		Due: func(ctx context.Context, st store.Store, account, _ string, now time.Time) (bool, error) {
			return tcpoll.Due(ctx, st, account, now)
		},
		Run: run}
	return r
}

// Connecting is the part of Registration the connect function reads (sources.Connecting): the
// name, the label and the connect. ThriveCart connects with the API key and secret word of the
// account's settings, and the key is checked before it is saved.
func Connecting() source.Registration {
	return source.Registration{Name: domain.ThriveCart, Label: "ThriveCart", Connect: source.Connect{Check: check}}
}

// CheckSecret reports whether s is acct's ThriveCart secret word, in constant time. It is false
// when none is configured. The word must have been opened (accounts.Repo.Get with
// accounts.ThriveCartSecretWord).
func CheckSecret(acct accounts.Account, s string) bool {
	return source.SecretEqual(s, acct.ThriveCart.Secret.Reveal())
}

// authenticate finds the secret word by one pass that keeps nothing (thrivecart.ScanSecret), so
// only a body carrying the account's word is decoded.
func authenticate(acct accounts.Account, d source.Delivery) error {
	secret, err := thrivecart.ScanSecret(d.Header("content-type"), d.Body)
	switch {
	case err != nil:
		return errors.New("body unreadable before authentication: " + err.Error())
	case secret == "":
		return errors.New("no secret word")
	case !CheckSecret(acct, secret):
		return errors.New("wrong secret word")
	}
	return nil
}

// split decodes the delivery: ThriveCart sends one event per request. The secret word does not
// travel further (Delivery.Payload leaves it out).
func split(d source.Delivery) ([]source.Event, error) {
	del, err := thrivecart.Decode(d.Header("content-type"), d.Body)
	if err != nil {
		return nil, err
	}
	payload, err := del.Payload()
	if err != nil {
		return nil, err
	}
	return []source.Event{{Name: del.Event, Payload: payload}}, nil
}

func normalize(ev source.Raw, _ accounts.Account, phone domain.PhoneFunc) ([]domain.Event, error) {
	if ev.Name == thrivecart.EventTransaction {
		// A record polled from GET /transactions: not a webhook body, and mapped so that it
		// never counts again what the webhook of the same payment counted.
		return thrivecart.NormalizeTransaction(ev.Payload, ev.ReceivedAt, thrivecart.Options{Phone: phone})
	}
	d, err := thrivecart.Decode("application/json", ev.Payload)
	if err != nil {
		return nil, err
	}
	return thrivecart.NormalizeWith(d, ev.ReceivedAt, thrivecart.Options{Phone: phone})
}
