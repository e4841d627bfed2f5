// Package thrivecartfake is an in-process stand-in for ThriveCart's external API, for tests:
// it answers GET /api/external/ping for the keys it was given and refuses any other.
package thrivecartfake

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// Server is a running fake.
type Server struct {
	// URL is the fake's base URL, for thrivecartapi.Client.BaseURL.
	URL string

	srv         *httptest.Server
	accountName string

	mu    sync.Mutex
	keys  map[string]bool
	pings int
}

// New starts a fake that accepts keys, naming the account accountName.
func New(accountName string, keys ...string) *Server {
	s := &Server{accountName: accountName, keys: map[string]bool{}}
	for _, k := range keys {
		s.keys[k] = true
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the fake.
func (s *Server) Close() { s.srv.Close() }

// Pings counts the ping requests received, accepted or not.
func (s *Server) Pings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pings
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet || r.URL.Path != "/api/external/ping" {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "not_found"})
		return
	}
	s.mu.Lock()
	s.pings++
	key, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	ok := bearer && s.keys[key]
	s.mu.Unlock()
	if !bearer || key == "" {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "auth.missing"})
		return
	}
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_token", "error_description": "The access token provided is invalid"})
		return
	}
	w.Header().Set("X-ThriveCart-Account-Name", s.accountName)
	_ = json.NewEncoder(w).Encode(map[string]any{"account_name": s.accountName, "success": true})
}
