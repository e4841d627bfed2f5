package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cartrelay/cartrelay/shared/awsjson"
)

// fakeKMS speaks the KMS JSON protocol (awsJson1_1, X-Amz-Target TrentService.*) for the
// operations the wrapper uses, with KMS's behaviour where it matters: the ciphertext blob names
// its key, the encryption context must match exactly, a KeyId that disagrees with the blob is
// IncorrectKeyException, an unknown key is NotFoundException, and requests must be signed.
type fakeKMS struct {
	mu    sync.Mutex
	keys  map[string]cipher.AEAD // by ARN
	alias map[string]string      // alias name and bare key id -> ARN
	calls map[string]int
	// contexts records the encryption context of every call, in order.
	contexts []map[string]string
}

func newFakeKMS(t *testing.T, keyIDs ...string) (*fakeKMS, *awsjson.Client) {
	t.Helper()
	f := &fakeKMS{keys: map[string]cipher.AEAD{}, alias: map[string]string{}, calls: map[string]int{}}
	for _, id := range keyIDs {
		f.addKey(t, id)
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client := awsjson.New(aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	}, KMSService)
	return f, client
}

func (f *fakeKMS) arn(id string) string { return "arn:aws:kms:us-east-1:123456789012:key/" + id }

func (f *fakeKMS) addKey(t *testing.T, id string) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	f.keys[f.arn(id)] = aead
	f.alias[id] = f.arn(id)
	f.alias["alias/"+id] = f.arn(id)
	f.alias[f.arn(id)] = f.arn(id)
}

func (f *fakeKMS) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

type kmsError struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func (f *fakeKMS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, typ, msg string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(kmsError{Type: typ, Message: msg})
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		fail(400, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		fail(400, "SerializationException", "unexpected content type "+ct)
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	if !ok {
		fail(400, "UnknownOperationException", "")
		return
	}
	var in struct {
		KeyId             string
		Plaintext         []byte
		CiphertextBlob    []byte
		EncryptionContext map[string]string
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(400, "SerializationException", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	f.contexts = append(f.contexts, in.EncryptionContext)
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(v)
	}
	resolve := func(id string) (string, bool) {
		a, ok := f.alias[id]
		return a, ok
	}
	switch op {
	case "Encrypt":
		arn, ok := resolve(in.KeyId)
		if !ok {
			fail(400, "NotFoundException", "Key '"+in.KeyId+"' does not exist")
			return
		}
		blob := f.encrypt(arn, in.Plaintext, in.EncryptionContext)
		reply(map[string]any{"CiphertextBlob": blob, "KeyId": arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
	case "Decrypt":
		arn, rest, ok := strings.Cut(string(in.CiphertextBlob), "\x00")
		aead := f.keys[arn]
		if !ok || aead == nil {
			fail(400, "InvalidCiphertextException", "")
			return
		}
		if in.KeyId != "" {
			want, ok := resolve(in.KeyId)
			if !ok {
				fail(400, "NotFoundException", "Key '"+in.KeyId+"' does not exist")
				return
			}
			if want != arn {
				fail(400, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")
				return
			}
		}
		ns := aead.NonceSize()
		body := []byte(rest)
		if len(body) < ns {
			fail(400, "InvalidCiphertextException", "")
			return
		}
		plain, err := aead.Open(nil, body[:ns], body[ns:], canonicalContext(in.EncryptionContext))
		if err != nil {
			fail(400, "InvalidCiphertextException", "")
			return
		}
		reply(map[string]any{"Plaintext": plain, "KeyId": arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
	default:
		fail(400, "UnknownOperationException", op)
	}
}

func (f *fakeKMS) encrypt(arn string, plain []byte, ec map[string]string) []byte {
	aead := f.keys[arn]
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := append([]byte(arn+"\x00"), nonce...)
	return aead.Seal(out, nonce, plain, canonicalContext(ec))
}

func canonicalContext(ec map[string]string) []byte {
	keys := make([]string, 0, len(ec))
	for k := range ec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + ec[k] + "\x00")
	}
	return []byte(b.String())
}
