package visitortoken

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const secret = "3f1c0e9a7b5d4c2e8f6a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e"

var now = time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC)

// known was computed outside Go, with Python's hmac module, exactly as docs/iterable.md tells
// a merchant's server to: it pins the format merchants implement.
const known = "v1.1795348800.YW5uQGV4YW1wbGUuY29t.afbc122b63f9ecfab00b3838d9db22a76f7eb8b69f50e4a1087d0590dbbe550e"

func TestKnownToken(t *testing.T) {
	email, err := Verify(secret, known, now)
	if err != nil || email != "ann@example.com" {
		t.Fatalf("Verify = %q, %v", email, err)
	}
	tok, err := Sign(secret, "ann@example.com", time.Unix(1795348800, 0))
	if err != nil || tok != known {
		t.Fatalf("Sign = %s, %v; want %s", tok, err, known)
	}
}

func TestVerifyRefusals(t *testing.T) {
	parts := strings.Split(known, ".")
	other, _ := Sign(secret, "zed@example.com", now.Add(time.Hour))
	otherParts := strings.Split(other, ".")
	longLived, _ := Sign(secret, "ann@example.com", now.Add(MaxTTL+time.Minute))
	for _, tc := range []struct {
		name, secret, token string
		at                  time.Time
		want                error
	}{
		{"another address, same signature", secret, strings.Join([]string{parts[0], parts[1], otherParts[2], parts[3]}, "."), now, ErrSignature},
		{"life stretched", secret, strings.Join([]string{parts[0], "1895348800", parts[2], parts[3]}, "."), now, ErrSignature},
		{"another account's secret", strings.Repeat("0", 64), known, now, ErrSignature},
		{"expired", secret, known, time.Unix(1795348800, 0), ErrExpired},
		{"expiry too far ahead", secret, longLived, now, ErrTooLong},
		{"no secret", "", known, now, ErrNoSecret},
		{"three parts", secret, strings.Join(parts[:3], "."), now, ErrMalformed},
		{"unknown version", secret, "v2." + strings.Join(parts[1:], "."), now, ErrMalformed},
		{"short signature", secret, strings.Join(parts[:3], ".") + ".abcd", now, ErrMalformed},
		{"huge", secret, strings.Repeat("a", 5000), now, ErrMalformed},
		{"a plain address", secret, "ann@example.com", now, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Verify(tc.secret, tc.token, tc.at); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(known, int64(0))
	f.Add("v1.x.y.z", int64(5))
	f.Add("v1.-99999999999999999.YQ."+strings.Repeat("0", 64), int64(-1))
	f.Fuzz(func(t *testing.T, token string, shift int64) {
		at := now.Add(time.Duration(shift) * time.Second)
		email, err := Verify(secret, token, at)
		if err != nil {
			for _, e := range []error{ErrMalformed, ErrSignature, ErrExpired, ErrTooLong} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("untyped error %v", err)
		}
		// Only a token this secret signed verifies: it is the one Sign makes again (the hex
		// digits of the signature may be in either case).
		exp := strings.Split(token, ".")[1]
		again, _ := Sign(secret, email, parseUnix(t, exp))
		if !strings.EqualFold(again, token) {
			t.Fatalf("%q verified but signing its contents gives %q", token, again)
		}
	})
}

func parseUnix(t *testing.T, s string) time.Time {
	var n int64
	for _, c := range s {
		if c == '-' {
			continue
		}
		n = n*10 + int64(c-'0')
	}
	if strings.HasPrefix(s, "-") {
		n = -n
	}
	return time.Unix(n, 0)
}
