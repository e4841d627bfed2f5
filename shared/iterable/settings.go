package iterable

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/outbound"
	"github.com/cartrelay/cartrelay/shared/reviews"
	"github.com/cartrelay/cartrelay/shared/sitehosts"
)

// EUBaseURL is the API host of Iterable's EU data center.
const EUBaseURL = "https://api.eu.iterable.com"

// Defaults of the account settings left unset (examples/account.schema.json says the same).
const (
	DefaultReturnCartDelay  = time.Hour
	DefaultAbandonCartAfter = 30 * time.Minute
	DefaultReviewWait       = 7 * 24 * time.Hour
	DefaultReviewLinkTTL    = 30 * 24 * time.Hour
)

// Settings are an account's Iterable settings, checked and converted.
type Settings struct {
	BaseURL string
	APIKey  accounts.Secret
	// RegularEvents gates purchases and custom events; ReturnCartEvents abandoned carts.
	RegularEvents    bool
	ReturnCartEvents bool
	// ThumbWidth and ThumbHeight size item images; 0 leaves them as the cart gives them.
	ThumbWidth, ThumbHeight int
	ReturnCartDelay         time.Duration
	AbandonCartAfter        time.Duration
	EmailLists              []int64
	SMSLists                []int64
	// PurchaseLists and CartLists are joined on a purchase and on an abandoned cart.
	PurchaseLists     []int64
	CartLists         []int64
	ReviewURLTemplate string
	ReviewWait        time.Duration
	ReviewLinkTTL     time.Duration
	// ReviewAfter is what starts the review wait: ReviewAfterShipment or ReviewAfterDelivery.
	ReviewAfter string
}

// What starts the review-request wait (iterable.review_after).
const (
	ReviewAfterShipment = "shipment"
	ReviewAfterDelivery = "delivery"
)

// DryRun reports whether requests are only recorded: there is no API key.
func (s Settings) DryRun() bool { return !s.APIKey.IsSet() }

// CartWait is how long after a cart's last activity its cartAbandoned event goes out: the
// configured delay, but never before the abandonment window has closed.
func (s Settings) CartWait() time.Duration { return max(s.ReturnCartDelay, s.AbandonCartAfter) }

// SettingError is one unusable setting.
type SettingError struct {
	Key     string // dotted account-file key
	Value   string
	Problem string
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("%s is %q: %s; fix it with `cartrelay accounts put`", e.Key, e.Value, e.Problem)
}

// ErrSettings matches every *SettingError.
var ErrSettings = errors.New("iterable settings are invalid")

// Is makes errors.Is(err, ErrSettings) true.
func (e *SettingError) Is(target error) bool { return target == ErrSettings }

// ParseSettings reads an account's Iterable settings. Every unusable setting is reported (joined),
// so one fix covers them all.
func ParseSettings(a accounts.Account) (Settings, error) {
	get := func(k string) string { return a.Text(keyPath(k)) }
	s := Settings{APIKey: a.SecretAt(string(APIKey)), RegularEvents: !a.Flag(keyPath(keyNoRegular)),
		ReturnCartEvents: !a.Flag(keyPath(keyNoReturnCart)), ReviewURLTemplate: strings.TrimSpace(get(keyReviewTemplate))}
	var errs []error
	bad := func(k, value, problem string) {
		errs = append(errs, &SettingError{Key: keyPath(k), Value: value, Problem: problem})
	}

	s.BaseURL = strings.TrimRight(get(keyBaseURL), "/")
	if s.BaseURL == "" {
		s.BaseURL = DefaultBaseURL
	}
	if err := outbound.CheckBaseURL(s.BaseURL); err != nil {
		// Stored before the check existed: the key must not travel in clear or to a stranger.
		bad(keyBaseURL, s.BaseURL, err.Error())
	}
	switch dc := get(keyDataCenter); strings.ToLower(strings.TrimSpace(dc)) {
	case "", "us":
	case "eu":
		if s.BaseURL == DefaultBaseURL {
			s.BaseURL = EUBaseURL
		}
	default:
		bad(keyDataCenter, dc, `must be "us" or "eu"`)
	}

	durations := []struct {
		key string
		def time.Duration
		dst *time.Duration
	}{
		{keyReturnCartDelay, DefaultReturnCartDelay, &s.ReturnCartDelay},
		{keyAbandonCartAfter, DefaultAbandonCartAfter, &s.AbandonCartAfter},
		{keyReviewWait, DefaultReviewWait, &s.ReviewWait},
		{keyReviewLinkTTL, DefaultReviewLinkTTL, &s.ReviewLinkTTL},
	}
	for _, d := range durations {
		value := get(d.key)
		if strings.TrimSpace(value) == "" {
			*d.dst = d.def
			continue
		}
		v, err := ParseDuration(value)
		if err != nil {
			bad(d.key, value, err.Error())
			continue
		}
		*d.dst = v
	}
	if s.ReviewLinkTTL <= 0 {
		s.ReviewLinkTTL = DefaultReviewLinkTTL
	}

	var err error
	size := get(keyThumbnailSize)
	if s.ThumbWidth, s.ThumbHeight, err = parseSize(size); err != nil {
		bad(keyThumbnailSize, size, err.Error())
	}
	for _, l := range []struct {
		key string
		dst *[]int64
	}{
		{keyEmailLists, &s.EmailLists}, {keySMSLists, &s.SMSLists},
		{keyPurchaseLists, &s.PurchaseLists}, {keyCartLists, &s.CartLists},
	} {
		v := get(l.key)
		if *l.dst, err = parseListIDs(v); err != nil {
			bad(l.key, v, err.Error())
		}
	}
	switch v := get(keyReviewAfter); strings.ToLower(strings.TrimSpace(v)) {
	case "", ReviewAfterShipment:
		s.ReviewAfter = ReviewAfterShipment
	case ReviewAfterDelivery:
		s.ReviewAfter = ReviewAfterDelivery
	default:
		bad(keyReviewAfter, v, `must be "shipment" (the wait starts when the order ships) or "delivery" (when the carrier reports it delivered)`)
	}
	if t := s.ReviewURLTemplate; t != "" {
		// A list that does not parse is the account check's to report; here it allows nothing.
		hosts, _ := sitehosts.Parse(a.AllowedDomains)
		if err := reviews.CheckTemplate(t, hosts); err != nil {
			bad(keyReviewTemplate, t, strings.TrimPrefix(err.Error(), reviews.ErrTemplate.Error()+": ")+
				" (review links redirect only to the store's own domains)")
		}
	}
	return s, errors.Join(errs...)
}

// CheckSettings reports the account's unusable Iterable settings, so `accounts put` can refuse
// them before any delivery depends on them.
func CheckSettings(a accounts.Account) error {
	_, err := ParseSettings(a)
	return err
}

// ParseDuration reads durations as people write them in settings: Go's units (ms, s, m, h)
// plus d (24 h) and w (7 d), combined as in "1d12h". A bare "0" is zero.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, errors.New("a duration such as \"30m\", \"1h\" or \"7d\" is needed")
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("%q is not a duration: use a number and a unit (ms, s, m, h, d, w), such as \"45m\" or \"1d12h\"", s)
		}
		num, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: %q is not a number", s, rest[:i])
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && rest[j] >= 'a' && rest[j] <= 'z' {
			j++
		}
		var unit time.Duration
		switch rest[:j] {
		case "ms":
			unit = time.Millisecond
		case "s":
			unit = time.Second
		case "m":
			unit = time.Minute
		case "h":
			unit = time.Hour
		case "d":
			unit = 24 * time.Hour
		case "w":
			unit = 7 * 24 * time.Hour
		default:
			return 0, fmt.Errorf("%q is not a duration: the unit %q is not one of ms, s, m, h, d, w", s, rest[:j])
		}
		rest = rest[j:]
		part := num * float64(unit)
		if part > float64(366*24*time.Hour) || total+time.Duration(part) > 366*24*time.Hour {
			return 0, fmt.Errorf("%q is longer than a year", s)
		}
		total += time.Duration(part)
	}
	return total, nil
}

// parseSize reads "200x200" or "200".
func parseSize(s string) (w, h int, err error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return 0, 0, nil
	}
	ws, hs, square := strings.Cut(s, "x")
	w, err = strconv.Atoi(strings.TrimSpace(ws))
	if err != nil || w <= 0 || w > 4000 {
		return 0, 0, errors.New(`must be "WIDTHxHEIGHT" or "WIDTH" in pixels, such as "200x200"`)
	}
	h = w
	if square {
		if h, err = strconv.Atoi(strings.TrimSpace(hs)); err != nil || h <= 0 || h > 4000 {
			return 0, 0, errors.New(`must be "WIDTHxHEIGHT" or "WIDTH" in pixels, such as "200x200"`)
		}
	}
	return w, h, nil
}

// parseListIDs reads "1234, 5678".
func parseListIDs(s string) ([]int64, error) {
	var out []int64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, err := strconv.ParseInt(part, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("%q is not an Iterable list id (a positive number); separate ids with commas", part)
		}
		out = append(out, id)
	}
	return out, nil
}
