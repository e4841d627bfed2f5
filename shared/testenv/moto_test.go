package testenv

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestMoto(t *testing.T) {
	endpoint := Moto(t)
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		t.Fatalf("endpoint %q, want a loopback URL", endpoint)
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(endpoint + "/moto-api/")
	if err != nil {
		t.Fatalf("moto_server does not answer: %v", err)
	}
	resp.Body.Close()
}

func TestHeadBufferKeepsTheStart(t *testing.T) {
	b := &headBuffer{limit: 5}
	for _, s := range []string{"abc", "defg", "hij"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v; want every byte accepted", s, n, err)
		}
	}
	if got := b.String(); got != "abcde" {
		t.Fatalf("kept %q, want %q", got, "abcde")
	}
}
