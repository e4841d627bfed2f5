package thrivecart

import (
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"strings"
)

// ScanSecret reads the secret word (thrivecart_secret) from a webhook body without decoding
// the rest of it, so that the webhook can authenticate a body before spending more on it
// than one pass over its bytes. It finds what Decode would put in Delivery.Secret: the last
// thrivecart_secret field, "" when there is none or it holds no text. A form body's other
// fields are not unescaped; a JSON body is checked but nothing of it is kept; a multipart
// body's other parts are not read. An error means the body is too broken to tell; it matches
// ErrMalformed.
func ScanSecret(contentType string, body []byte) (string, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return "", &DecodeError{Reason: "the body is empty"}
	}
	switch kind, boundary := formatOf(contentType, body); kind {
	case formatJSON:
		return jsonSecret(body)
	case formatMultipart:
		return multipartSecret(body, boundary)
	default:
		return formSecret(body)
	}
}

// formSecret follows Decode's rules: the secret is the value of the last field named
// thrivecart_secret; a later thrivecart_secret[...] field turns it into a level, which holds
// no text. A field whose escapes do not decode is passed over (Decode refuses the body).
func formSecret(body []byte) (string, error) {
	var secret string
	err := eachFormPair(body, func(_ int, rawKey, rawVal string) error {
		// The name is unescaped only when it could be the secret's, so the common case
		// allocates nothing.
		if !strings.HasPrefix(rawKey, "thrivecart") && !strings.HasPrefix(rawKey, "%") {
			return nil
		}
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil
		}
		base, segs := splitKey(strings.ToValidUTF8(key, "\uFFFD"))
		if base != secretField {
			return nil
		}
		secret = ""
		if len(segs) == 0 {
			if val, err := url.QueryUnescape(rawVal); err == nil {
				secret = strings.ToValidUTF8(val, "\uFFFD")
			}
		}
		return nil
	})
	return secret, err
}

// multipartSecret reads only the parts named thrivecart_secret (Decode reads the others).
func multipartSecret(body []byte, boundary string) (string, error) {
	var secret string
	err := eachPart(body, boundary, func(name string, value io.Reader) error {
		base, segs := splitKey(strings.ToValidUTF8(name, "\uFFFD"))
		if base != secretField {
			return nil
		}
		secret = ""
		if len(segs) == 0 {
			v, err := readPart(value, len(body))
			if err != nil {
				return err
			}
			secret = strings.ToValidUTF8(v, "\uFFFD")
		}
		return nil
	})
	return secret, err
}

// jsonSecret finds the secret in two passes that allocate nothing: json.Valid checks the
// whole body, then the top-level object's members are walked, every value but the secret's
// skipped by its brackets and quotes. As Decode does, it keeps the last thrivecart_secret
// member, reads a number or boolean as its JSON text, and finds no text in null, an object or
// an array.
func jsonSecret(body []byte) (string, error) {
	if !json.Valid(body) {
		return "", invalidJSON(body)
	}
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return "", &DecodeError{Reason: "the JSON body is " + jsonKindAt(body[i]) + "; expected an object"}
	}
	var secret string
	for i = skipSpace(body, i+1); body[i] != '}'; {
		keyEnd := stringEnd(body, i)
		key := body[i:keyEnd]
		i = skipSpace(body, skipSpace(body, keyEnd)+1) // past the ':'
		valEnd := valueEnd(body, i)
		if isSecretKey(key) {
			secret = jsonText(body[i:valEnd])
		}
		i = skipSpace(body, valEnd)
		if body[i] == ',' {
			i = skipSpace(body, i+1)
		}
	}
	return secret, nil
}

// invalidJSON explains why a body json.Valid refused is not one JSON object.
func invalidJSON(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&skipValue{}); err != nil {
		return jsonError(err)
	}
	return &DecodeError{Offset: dec.InputOffset(), Reason: "the JSON body has data after its end"}
}

// isSecretKey reports whether a quoted JSON key names the secret; a key with escapes is
// unquoted first ("thrivecart\u005fsecret" names it too).
func isSecretKey(quoted []byte) bool {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return string(quoted[1:len(quoted)-1]) == secretField
	}
	var k string
	return json.Unmarshal(quoted, &k) == nil && k == secretField
}

// The walkers below read a body json.Valid accepted, so they need not check anything.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd is the index after the string starting at b[i] ('"').
func stringEnd(b []byte, i int) int {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// valueEnd is the index after the value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for i < len(b) && !strings.ContainsRune(",]} \t\r\n", rune(b[i])) {
		i++
	}
	return i
}

func jsonKindAt(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// jsonText is the text Decode keeps for a JSON value: a string's contents, a number's or a
// boolean's JSON text, and "" for anything else.
func jsonText(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	case '{', '[', 'n':
		return ""
	}
	return string(raw)
}
