package signedhooks

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/outbound"
)

// Name is the destination's name: its queue, its section of the account file and its name in
// the delivery log.
const Name = "webhooks"

// Keys of the account file's "webhooks" section.
const (
	keyEnabled        = "enabled"
	keyHistory        = "history"
	keyEndpoints      = "endpoints"
	keyURL            = "url"
	keySecret         = "secret"
	keyPreviousSecret = "previous_secret"
	keyKinds          = "kinds"
)

// Section is the destination's part of the account file:
//
//	"webhooks": {"enabled": true, "history": "profiles", "endpoints": {
//	    "crm": {"url": "https://…", "secret": "whsec_…", "previous_secret": "whsec_…", "kinds": "OrderPlaced, OrderRefunded"}}}
func Section() accounts.Section {
	return accounts.Section{
		Name: Name,
		Fields: []accounts.SectionField{
			{Key: keyEnabled, Kind: accounts.KindBool, Label: "Send signed webhooks"},
			{Key: keyHistory, Kind: accounts.KindHistory, Default: accounts.HistoryProfiles, Label: "History",
				Help: "none, profiles or all: what a backfill of old events may send"},
		},
		Entries: keyEndpoints,
		EntryFields: []accounts.SectionField{
			{Key: keyURL, Kind: accounts.KindText, Label: "URL", Help: "https only (http only for a receiver on localhost)"},
			{Key: keySecret, Kind: accounts.KindSecret, Label: "Signing secret", Help: "whsec_ followed by base64 of 24 to 64 random bytes"},
			{Key: keyPreviousSecret, Kind: accounts.KindSecret, Label: "Previous secret", Help: "during a rotation only: requests are signed with both"},
			{Key: keyKinds, Kind: accounts.KindText, Label: "Fact kinds", Help: "comma-separated, such as OrderPlaced, OrderRefunded; empty: all"},
		},
	}
}

// Secrets are the secrets a delivery opens: every endpoint's current and previous secret.
func Secrets() []accounts.Field {
	s := Section()
	return []accounts.Field{s.EntryPattern(keySecret), s.EntryPattern(keyPreviousSecret)}
}

// Endpoint is one receiver of an account's facts.
type Endpoint struct {
	// Name is the merchant's name for it ("crm"), the key under webhooks.endpoints.
	Name string
	URL  string
	// Secrets sign each request, the current one first; two during a rotation. None: the
	// endpoint runs dry.
	Secrets []accounts.Secret
	// Kinds are the fact kinds it takes; empty: all.
	Kinds []domain.FactKind
}

// Takes reports whether the endpoint wants facts of kind k.
func (e Endpoint) Takes(k domain.FactKind) bool {
	return len(e.Kinds) == 0 || slices.Contains(e.Kinds, k)
}

// Dry reports whether the endpoint has no secret, so its requests are recorded, not sent.
func (e Endpoint) Dry() bool { return len(e.Secrets) == 0 }

// Settings are an account's webhook settings, checked.
type Settings struct {
	Enabled   bool
	History   accounts.HistoryMode
	Endpoints []Endpoint
}

func path(parts ...string) string { return strings.Join(append([]string{Name}, parts...), ".") }

// ErrSettings matches every *SettingError.
var ErrSettings = errors.New("webhook settings are invalid")

// SettingError is one unusable setting.
type SettingError struct {
	Key     string
	Problem string
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("%s %s; fix it with `cartrelay accounts put`", e.Key, e.Problem)
}

// Is makes errors.Is(err, ErrSettings) true.
func (e *SettingError) Is(target error) bool { return target == ErrSettings }

// ParseSettings reads the account's webhook settings; every unusable one is reported (joined).
// Secrets that were not opened are taken as set, and checked when they are opened.
func ParseSettings(a accounts.Account) (Settings, error) {
	s := Settings{Enabled: a.Flag(path(keyEnabled)), History: a.HistoryAt(path(keyHistory))}
	if s.History == "" {
		s.History = accounts.HistoryProfiles
	}
	var errs []error
	bad := func(key, problem string) { errs = append(errs, &SettingError{Key: key, Problem: problem}) }
	for _, name := range a.EntryNames(Section()) {
		e := Endpoint{Name: name, URL: a.Text(path(keyEndpoints, name, keyURL))}
		if err := checkURL(e.URL); err != nil {
			bad(path(keyEndpoints, name, keyURL), err.Error())
		}
		for _, k := range []string{keySecret, keyPreviousSecret} {
			sec := a.SecretAt(path(keyEndpoints, name, k))
			if !sec.IsSet() {
				continue
			}
			if sec.Opened() {
				if err := checkSecret(sec.Reveal()); err != nil {
					bad(path(keyEndpoints, name, k), err.Error())
					continue
				}
			}
			e.Secrets = append(e.Secrets, sec)
		}
		if a.SecretAt(path(keyEndpoints, name, keyPreviousSecret)).IsSet() && !a.SecretAt(path(keyEndpoints, name, keySecret)).IsSet() {
			bad(path(keyEndpoints, name, keyPreviousSecret), "is set without a secret: a previous secret is kept only during a rotation, beside the new secret")
		}
		kinds, err := parseKinds(a.Text(path(keyEndpoints, name, keyKinds)))
		if err != nil {
			bad(path(keyEndpoints, name, keyKinds), err.Error())
		}
		e.Kinds = kinds
		s.Endpoints = append(s.Endpoints, e)
	}
	if s.Enabled && len(s.Endpoints) == 0 {
		bad(path(keyEnabled), `is true but no endpoint is configured: add one under webhooks.endpoints, such as {"crm": {"url": "https://crm.example.com/cartrelay", "secret": "whsec_..."}}`)
	}
	return s, errors.Join(errs...)
}

// CheckSettings reports the account's unusable webhook settings, so `accounts put` refuses them.
func CheckSettings(a accounts.Account) error {
	_, err := ParseSettings(a)
	return err
}

// checkURL accepts https, and http only for a receiver on this machine (a local run).
func checkURL(raw string) error {
	if raw == "" {
		return errors.New(`is missing: give the receiver's https address, such as "https://crm.example.com/cartrelay"`)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf(`is %q, which is not an absolute https URL: use one such as "https://crm.example.com/cartrelay"`, raw)
	}
	if u.Fragment != "" {
		return fmt.Errorf("is %q: remove the #fragment, which is never sent", raw)
	}
	if err := outbound.CheckBaseURL(raw); err != nil {
		if errors.Is(err, outbound.ErrInsecureURL) {
			return fmt.Errorf("is %q: endpoints must be https, since each request carries a customer's details and a signature; plain http is accepted only for a receiver on localhost or 127.0.0.1 in a local run", raw)
		}
		return fmt.Errorf("is %q: %w", raw, err)
	}
	return nil
}

// secretPrefix starts a secret as the Standard Webhooks specification writes them.
const secretPrefix = "whsec_"

// checkSecret accepts "whsec_" and base64 of 24 to 64 bytes, as the specification advises.
func checkSecret(s string) error {
	raw, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return errors.New(`must start with "whsec_" followed by base64 of 24 to 64 random bytes; make one with: echo "whsec_$(head -c 32 /dev/urandom | base64)"`)
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return errors.New(`must be "whsec_" followed by base64 of 24 to 64 random bytes; make one with: echo "whsec_$(head -c 32 /dev/urandom | base64)"`)
	}
	return nil
}

// parseKinds reads "OrderPlaced, OrderRefunded"; empty means every kind.
func parseKinds(s string) ([]domain.FactKind, error) {
	var out []domain.FactKind
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k := domain.FactKind(part)
		if !slices.Contains(domain.FactKinds(), k) {
			names := make([]string, 0, len(domain.FactKinds()))
			for _, k := range domain.FactKinds() {
				names = append(names, string(k))
			}
			return nil, fmt.Errorf("names %q, which is not a fact kind; separate kinds with commas, from: %s (leave it empty for all)", part, strings.Join(names, ", "))
		}
		out = append(out, k)
	}
	return out, nil
}
