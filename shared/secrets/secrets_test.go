package secrets

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
)

var aadAPIKey = Purpose{Account: "acme", Secret: "ontraport.api_key"}

func testClock() *clock.Fake { return clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)) }

func newLocal(t *testing.T) *LocalKey {
	t.Helper()
	k, err := LoadOrCreateLocalKey(filepath.Join(t.TempDir(), "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKMSWrapper(t *testing.T) (*KMS, *fakeKMS) {
	t.Helper()
	f, client := newFakeKMS(t, "1234abcd-12ab-34cd-56ef-1234567890ab")
	k, err := NewKMS(client, "alias/1234abcd-12ab-34cd-56ef-1234567890ab")
	if err != nil {
		t.Fatal(err)
	}
	return k, f
}

// wrappers runs a test against both master keys.
func wrappers(t *testing.T) map[string]KeyWrapper {
	k, _ := newKMSWrapper(t)
	return map[string]KeyWrapper{"local": newLocal(t), "kms": k}
}

func TestSealOpenRoundtrip(t *testing.T) {
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	for name, w := range wrappers(t) {
		for _, tc := range []struct {
			name  string
			plain []byte
		}{
			{"empty", []byte{}},
			{"api key", []byte("sk_live_51Hx9")},
			{"unicode", []byte("pässwörd ✓")},
			{"64 KiB", big},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				// Without a cache every Open goes through the master key.
				for _, s := range []*Sealer{NewSealer(w, testClock()), NewSealer(w, testClock(), WithCache(0, 0))} {
					sealed, err := s.Seal(ctx, tc.plain, aadAPIKey)
					if err != nil {
						t.Fatal(err)
					}
					if !strings.HasPrefix(sealed, "v2.") || !IsSealed(sealed) || !Current(sealed) {
						t.Fatalf("sealed value %.40q is not in the v2 format", sealed)
					}
					for _, c := range []byte(sealed) {
						if c <= ' ' || c > '~' {
							t.Fatalf("sealed value has non-printable byte %q", c)
						}
					}
					if len(tc.plain) > 4 && strings.Contains(sealed, string(tc.plain)) {
						t.Fatal("sealed value contains the plaintext")
					}
					got, err := s.Open(ctx, sealed, aadAPIKey)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, tc.plain) {
						t.Fatalf("opened %q, want %q", got, tc.plain)
					}
				}
			})
		}
	}
}

func TestSealIsRandomized(t *testing.T) {
	ctx := context.Background()
	s := NewSealer(newLocal(t), testClock())
	a, _ := s.Seal(ctx, []byte("same"), aadAPIKey)
	b, _ := s.Seal(ctx, []byte("same"), aadAPIKey)
	pa, _ := parse(a)
	pb, _ := parse(b)
	if bytes.Equal(pa.wrapped, pb.wrapped) || bytes.Equal(pa.box[:12], pb.box[:12]) {
		t.Fatal("two seals share a data key or a nonce")
	}
}

func TestOpenWithAnotherAADFails(t *testing.T) {
	ctx := context.Background()
	for name, w := range wrappers(t) {
		for _, other := range []Purpose{
			{Account: "other", Secret: "ontraport.api_key"}, // copied to another account
			{Account: "acme", Secret: "iterable.api_key"},   // copied to another field
			{},
		} {
			t.Run(name+"/"+other.String(), func(t *testing.T) {
				s := NewSealer(w, testClock())
				sealed, err := s.Seal(ctx, []byte("secret"), aadAPIKey)
				if err != nil {
					t.Fatal(err)
				}
				_, err = s.Open(ctx, sealed, other)
				if !errors.Is(err, ErrTampered) {
					t.Fatalf("Open for %s: got %v, want ErrTampered", other, err)
				}
				// A fresh process (empty cache) must refuse too.
				_, err = NewSealer(w, testClock()).Open(ctx, sealed, other)
				if !errors.Is(err, ErrTampered) {
					t.Fatalf("Open for %s with a cold cache: got %v, want ErrTampered", other, err)
				}
			})
		}
	}
}

func TestTamperingFails(t *testing.T) {
	ctx := context.Background()
	for name, w := range wrappers(t) {
		seal := func(t *testing.T, plain string) parsed {
			s, err := NewSealer(w, testClock()).Seal(ctx, []byte(plain), aadAPIKey)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := parse(s)
			return p
		}
		enc := func(p parsed) string {
			return p.format + "." + p.keyID + "." + b64(p.wrapped) + "." + b64(p.box)
		}
		flip := func(b []byte, i int) []byte {
			c := bytes.Clone(b)
			c[i%len(c)] ^= 0x01
			return c
		}
		for _, tc := range []struct {
			name   string
			mangle func(p parsed) string
			want   error
		}{
			{"ciphertext bit", func(p parsed) string { p.box = flip(p.box, len(p.box)-1); return enc(p) }, ErrTampered},
			{"nonce bit", func(p parsed) string { p.box = flip(p.box, 0); return enc(p) }, ErrTampered},
			{"wrapped key bit", func(p parsed) string { p.wrapped = flip(p.wrapped, len(p.wrapped)-3); return enc(p) }, ErrTampered},
			{"truncated", func(p parsed) string { p.box = p.box[:10]; return enc(p) }, ErrTampered},
			{"data key from another value", func(p parsed) string {
				p.wrapped = seal(t, "other").wrapped
				return enc(p)
			}, ErrTampered},
			{"unknown key id", func(p parsed) string { p.keyID = "local-000000000000"; return enc(p) }, ErrWrongKey},
			{"future version", func(p parsed) string { return "v3" + enc(p)[2:] }, ErrMalformed},
			{"format v1 of a v2 value", func(p parsed) string { return "v1" + enc(p)[2:] }, ErrTampered},
			{"plaintext", func(parsed) string { return "sk_live_51Hx9" }, ErrMalformed},
			{"empty", func(parsed) string { return "" }, ErrMalformed},
			{"bad base64", func(p parsed) string { return enc(p) + "!" }, ErrMalformed},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				sealed := tc.mangle(seal(t, "secret"))
				_, err := NewSealer(w, testClock()).Open(ctx, sealed, aadAPIKey)
				if !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				var oe *OpenError
				if !errors.As(err, &oe) || oe.What != aadAPIKey.String() {
					t.Fatalf("error %v is not an *OpenError naming %s", err, aadAPIKey)
				}
			})
		}
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

var errDown = errors.New("dial tcp: connection refused")

// kmsDown fails every call the way an unreachable endpoint does.
type kmsDown struct{}

func (kmsDown) Call(context.Context, string, any, any) error { return errDown }

func TestWrongLocalKeyExplainsItself(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	first, err := LoadOrCreateLocalKey(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := NewSealer(first, testClock()).Seal(ctx, []byte("secret"), aadAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	second, err := LoadOrCreateLocalKey(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewSealer(second, testClock()).Open(ctx, sealed, aadAPIKey)
	if !errors.Is(err, ErrWrongKey) || errors.Is(err, ErrTampered) {
		t.Fatalf("got %v, want ErrWrongKey", err)
	}
	for _, want := range []string{"cannot decrypt " + aadAPIKey.String(), "sealed with another master key", first.ID(), second.ID(), "was the local key file replaced?"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// Repositories rename the value for people.
	var oe *OpenError
	if errors.As(err, &oe) {
		renamed := &OpenError{What: "ontraport.api_key of account acme", Err: oe.Err}
		if !strings.HasPrefix(renamed.Error(), "cannot decrypt ontraport.api_key of account acme: the data key was sealed with another master key (") {
			t.Errorf("renamed error reads %q", renamed)
		}
	}
}

func TestLocalAndKMSDoNotOpenEachOther(t *testing.T) {
	ctx := context.Background()
	local := newLocal(t)
	k, fake := newKMSWrapper(t)
	fromLocal, _ := NewSealer(local, testClock()).Seal(ctx, []byte("x"), aadAPIKey)
	fromKMS, _ := NewSealer(k, testClock()).Seal(ctx, []byte("x"), aadAPIKey)

	before := fake.count("Decrypt")
	_, err := NewSealer(k, testClock()).Open(ctx, fromLocal, aadAPIKey)
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "local key file") {
		t.Fatalf("KMS opening a local value: %v", err)
	}
	if fake.count("Decrypt") != before {
		t.Fatal("a local value was sent to KMS")
	}
	_, err = NewSealer(local, testClock()).Open(ctx, fromKMS, aadAPIKey)
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "KMS") {
		t.Fatalf("local key opening a KMS value: %v", err)
	}
}

func TestKMSErrorsMapToKinds(t *testing.T) {
	ctx := context.Background()
	fake, client := newFakeKMS(t, "key-a", "key-b")
	a, _ := NewKMS(client, "key-a")
	b, _ := NewKMS(client, "key-b")
	sealed, err := NewSealer(a, testClock()).Seal(ctx, []byte("secret"), aadAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := parse(sealed)
	if p.keyID != fake.arn("key-a") {
		t.Fatalf("sealed value records key %q, want the key ARN", p.keyID)
	}
	if got := fake.contexts[len(fake.contexts)-1]; len(got) != 2 || got[ContextAccount] != "acme" || got[ContextSecret] != "ontraport.api_key" {
		t.Fatalf("encryption context %v, want the account and the secret's name", got)
	}

	// The value names key-a, so a deployment configured with key-b still asks for key-a;
	// KMS decides by its key policy (here: allowed).
	if _, err := NewSealer(b, testClock()).Open(ctx, sealed, aadAPIKey); err != nil {
		t.Fatalf("open a value of another key KMS can use: %v", err)
	}

	for _, tc := range []struct {
		name  string
		keyID string
		want  error
	}{
		{"key id disagrees with blob", fake.arn("key-b"), ErrWrongKey},
		{"deleted key", fake.arn("gone"), ErrWrongKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p2 := p
			p2.keyID = tc.keyID
			bad := p2.format + "." + p2.keyID + "." + b64(p2.wrapped) + "." + b64(p2.box)
			_, err := NewSealer(a, testClock()).Open(ctx, bad, aadAPIKey)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("unreachable KMS is not a permanent error", func(t *testing.T) {
		down, _ := NewKMS(kmsDown{}, "key-a")
		_, err := NewSealer(down, testClock()).Open(ctx, sealed, aadAPIKey)
		if err == nil || errors.Is(err, ErrTampered) || errors.Is(err, ErrWrongKey) || !errors.Is(err, errDown) {
			t.Fatalf("got %v, want the transport error", err)
		}
	})
}

func TestCacheSavesUnwrapsAndExpires(t *testing.T) {
	ctx := context.Background()
	k, fake := newKMSWrapper(t)
	clk := testClock()
	writer := NewSealer(k, clk)
	sealed, err := writer.Seal(ctx, []byte("secret"), aadAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	reader := NewSealer(k, clk, WithCache(time.Minute, 8))
	for range 5 {
		if _, err := reader.Open(ctx, sealed, aadAPIKey); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.count("Decrypt"); n != 1 {
		t.Fatalf("5 opens made %d Decrypt calls, want 1", n)
	}
	clk.Advance(time.Minute)
	if _, err := reader.Open(ctx, sealed, aadAPIKey); err != nil {
		t.Fatal(err)
	}
	if n := fake.count("Decrypt"); n != 2 {
		t.Fatalf("after the TTL: %d Decrypt calls, want 2", n)
	}
	// The writer remembers the key it just sealed with.
	if _, err := writer.Open(ctx, sealed, aadAPIKey); err != nil {
		t.Fatal(err)
	}
	if n := fake.count("Decrypt"); n != 2 {
		t.Fatalf("opening a value this sealer sealed called Decrypt (%d calls)", n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	clk := testClock()
	s := NewSealer(newLocal(t), clk, WithCache(time.Hour, 3))
	var sealed []string
	for i := range 10 {
		v, err := s.Seal(ctx, []byte{byte(i)}, aadAPIKey)
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, v)
		clk.Advance(time.Second)
	}
	if n := len(s.cache); n > 3 {
		t.Fatalf("cache holds %d entries, bound is 3", n)
	}
	// The most recent entries survive.
	p, _ := parse(sealed[9])
	if _, ok := s.recall(p.keyID, aadAPIKey.String(), p.wrapped); !ok {
		t.Fatal("the newest data key was evicted")
	}
	p, _ = parse(sealed[0])
	if _, ok := s.recall(p.keyID, aadAPIKey.String(), p.wrapped); ok {
		t.Fatal("the oldest data key is still cached")
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	s := NewSealer(newLocal(t), testClock(), WithCache(time.Hour, 4))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			plain := []byte{byte(i)}
			v, err := s.Seal(ctx, plain, aadAPIKey)
			if err == nil {
				var got []byte
				got, err = s.Open(ctx, v, aadAPIKey)
				if err == nil && !bytes.Equal(got, plain) {
					err = errors.New("wrong plaintext")
				}
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestLocalKeyFile(t *testing.T) {
	t.Run("created 0600 in a 0700 directory and reloaded", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "data", "master.key")
		k1, err := LoadOrCreateLocalKey(path)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm != 0o600 {
			t.Fatalf("key file mode %04o, want 0600", perm)
		}
		dst, _ := os.Stat(filepath.Dir(path))
		if perm := dst.Mode().Perm(); perm&0o077 != 0 {
			t.Fatalf("key directory mode %04o is open to others", perm)
		}
		k2, err := LoadOrCreateLocalKey(path)
		if err != nil {
			t.Fatal(err)
		}
		if k1.ID() != k2.ID() {
			t.Fatal("reloading the key file gave another key")
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Fatalf("the directory holds %d files, want only the key", len(entries))
		}
	})
	t.Run("concurrent first use agrees on one key", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "master.key")
		ids := make([]string, 16)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				k, err := LoadOrCreateLocalKey(path)
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = k.ID()
			})
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("processes disagree on the key: %v", ids)
			}
		}
	})
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"readable by others", "", 0o644, "chmod 600"},
		{"damaged", "not a key\n", 0o600, "damaged"},
		{"short", "AAAA\n", 0o600, "damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if _, err := LoadOrCreateLocalKey(path); err != nil {
				t.Fatal(err)
			}
			if tc.content != "" {
				if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateLocalKey(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want an error naming the file and saying %q", err, tc.want)
			}
		})
	}
}

// TestKnownHoldsWhatWasSealedOrOpened: the process's records and logs are scrubbed of exactly
// the secrets it had in hand.
func TestKnownHoldsWhatWasSealedOrOpened(t *testing.T) {
	ctx := context.Background()
	key := newLocal(t)
	writer, reader := NewSealer(key, testClock()), NewSealer(key, testClock())
	sealed, err := writer.Seal(ctx, []byte("op-api-key-sealed-1"), aadAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	if !writer.Known().Contains("401 op-api-key-sealed-1") {
		t.Error("the sealing process does not know the value it sealed")
	}
	if reader.Known().Contains("401 op-api-key-sealed-1") {
		t.Error("a process knows a value before opening it")
	}
	if _, err := reader.Open(ctx, sealed, aadAPIKey); err != nil {
		t.Fatal(err)
	}
	if !reader.Known().Contains("401 op-api-key-sealed-1") {
		t.Error("the opening process does not know the value it opened")
	}
}

// TestValuesOfEarlierReleasesStillOpen: a value sealed in format v1 (one purpose string as the
// encryption context) opens with the same purpose, only with it, and is reported as not current
// so `accounts reseal` can seal it again.
func TestValuesOfEarlierReleasesStillOpen(t *testing.T) {
	ctx := context.Background()
	for name, w := range wrappers(t) {
		t.Run(name, func(t *testing.T) {
			old, err := NewSealer(w, testClock()).seal(ctx, []byte("op-key-of-2025"), aadAPIKey, formatV1)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(old, "v1.") || Current(old) || !IsSealed(old) {
				t.Fatalf("%.40q: want a v1 value that is sealed but not current", old)
			}
			got, err := NewSealer(w, testClock()).Open(ctx, old, aadAPIKey)
			if err != nil || string(got) != "op-key-of-2025" {
				t.Fatalf("open a v1 value: %q, %v", got, err)
			}
			other := Purpose{Account: "acme", Secret: "iterable.api_key"}
			if _, err := NewSealer(w, testClock()).Open(ctx, old, other); !errors.Is(err, ErrTampered) {
				t.Fatalf("a v1 value opened for another secret: %v", err)
			}
			if _, err := NewSealer(w, testClock()).Open(ctx, "v2"+old[2:], aadAPIKey); !errors.Is(err, ErrTampered) {
				t.Fatalf("a v1 value relabelled v2 opened: %v", err)
			}
		})
	}
}

// TestLocalKeyOpensWhatTheLastReleaseSealed pins format v1 of the local key: a value written
// by the previous release (fixed bytes, fixed key) must open.
func TestLocalKeyOpensWhatTheLastReleaseSealed(t *testing.T) {
	key, err := NewLocalKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	const sealed = "v1.local-3ecf24992363.pSsKCoVH3lxcO_moAPlikHAxve2AJiLhYWbMqnbQWxu7ErMReE-g8gFiHHZhxNyx4AmIyheFCAoYtOZc.AHQ7su-u0EgG9nXzir7NYTgvpRoeb7USieVe5a6gh1CaSD3sc8_2ljKp"
	got, err := NewSealer(key, testClock()).Open(context.Background(), sealed, aadAPIKey)
	if err != nil || string(got) != "op-key-of-2025" {
		t.Fatalf("open: %q, %v", got, err)
	}
}

func TestRestrictKeepsToTheGrant(t *testing.T) {
	ctx := context.Background()
	for name, w := range wrappers(t) {
		t.Run(name, func(t *testing.T) {
			full := NewSealer(w, testClock())
			apiKey, err := full.Seal(ctx, []byte("op-api-key-1234"), aadAPIKey)
			if err != nil {
				t.Fatal(err)
			}
			hook := Purpose{Account: "acme", Secret: "ultracart.webhook_password"}
			password, err := full.Seal(ctx, []byte("webhook-pass-1234"), hook)
			if err != nil {
				t.Fatal(err)
			}
			legacy, err := full.seal(ctx, []byte("webhook-pass-2025"), hook, formatV1)
			if err != nil {
				t.Fatal(err)
			}
			webhook := NewSealer(Restrict(w, Grant{Decrypt: []string{"ultracart.webhook_password", "thrivecart.secret"}}), testClock())
			for _, v := range []string{password, legacy} {
				if _, err := webhook.Open(ctx, v, hook); err != nil {
					t.Errorf("the granted secret does not open: %v", err)
				}
			}
			_, err = webhook.Open(ctx, apiKey, aadAPIKey)
			var ng *NotGrantedError
			if !errors.Is(err, ErrNotGranted) || !errors.As(err, &ng) || ng.Op != "decrypt" || ng.Secret != "ontraport.api_key" ||
				!strings.Contains(err.Error(), "may not decrypt ontraport.api_key (it may decrypt: ultracart.webhook_password, thrivecart.secret)") {
				t.Errorf("opening a secret outside the grant: %v", err)
			}
			if _, err := webhook.Seal(ctx, []byte("x"), hook); !errors.Is(err, ErrNotGranted) {
				t.Errorf("sealing without an encrypt grant: %v", err)
			}
		})
	}
}
