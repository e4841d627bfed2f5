package thrivecart

import (
	"errors"
	"strings"
	"testing"
)

func TestScanSecret(t *testing.T) {
	const form, js = "application/x-www-form-urlencoded", "application/json"
	mp := "--zz\r\nContent-Disposition: form-data; name=\"event\"\r\n\r\nx\r\n" +
		"--zz\r\nContent-Disposition: form-data; name=\"thrivecart_secret\"\r\n\r\nw p\r\n--zz--\r\n"
	tests := []struct {
		name, contentType, body, want string
	}{
		{"form", form, "event=x&thrivecart_secret=w&a=1", "w"},
		{"form, escaped", form, "event=x&%74hrivecart%5Fsecret=w+p%21", "w p!"},
		{"form, the last one", form, "thrivecart_secret=a&event=x&thrivecart_secret=b", "b"},
		{"form, made a level", form, "thrivecart_secret=a&thrivecart_secret[x]=b", ""},
		{"form, level then text", form, "thrivecart_secret[x]=b&thrivecart_secret=c", "c"},
		{"form, none", form, "event=x&thrivecart_secrets=w", ""},
		{"form, bad escape elsewhere", form, "a=%zz&thrivecart_secret=w", "w"},
		{"no type, form", "", "thrivecart_secret=w", "w"},
		{"json", js, `{"event":"x","thrivecart_secret":"w"}`, "w"},
		{"json, escaped key and value", js, `{"thrivecart\u005fsecret":"w\u0021"}`, "w!"},
		{"json, number", js, `{"thrivecart_secret": 12.50 }`, "12.50"},
		{"json, boolean", js, `{"thrivecart_secret":true}`, "true"},
		{"json, null last", js, `{"thrivecart_secret":"a","thrivecart_secret":null}`, ""},
		{"json, object", js, `{"thrivecart_secret":{"a":"b"}}`, ""},
		{"json, nested is not it", js, `{"a":{"thrivecart_secret":"x"},"b":["thrivecart_secret","y"]}`, ""},
		{"json, quotes and brackets in strings", js, `{"a":"}\"{[","b":[{"c":"]"}],"thrivecart_secret":"w"}`, "w"},
		{"json, spaces", js, " \n{ \"thrivecart_secret\" :\t\"w\" , \"a\" : [ 1 , 2 ] }\n", "w"},
		{"no type, json", "", `{"thrivecart_secret":"w"}`, "w"},
		{"multipart", "multipart/form-data; boundary=zz", mp, "w p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ScanSecret(tt.contentType, []byte(tt.body))
			if err != nil || got != tt.want {
				t.Fatalf("ScanSecret = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	for _, tt := range []struct{ name, contentType, body, want string }{
		{"empty", form, " ", "empty"},
		{"bad json", js, `{"thrivecart_secret":"w",}`, "byte 26: the body is not valid JSON"},
		{"truncated json", js, `{"thrivecart_secret":"w"`, "ends early"},
		{"json array", js, `["thrivecart_secret"]`, "is an array; expected an object"},
		{"json after json", js, `{"thrivecart_secret":"w"} {}`, "data after its end"},
		{"multipart without boundary", "multipart/form-data", "x", "without a boundary"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ScanSecret(tt.contentType, []byte(tt.body))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
}
