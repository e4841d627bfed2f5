package ultracartfake

// RevokeAccessTokens invalidates every access token issued so far before its expiry, as
// UltraCart may; requests with them get 401, while refresh tokens keep working.
func (s *Server) RevokeAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.oauth.access)
}

// Forbid makes requests under the path prefix (such as "/rest/v2/customer/") answer 401, as
// UltraCart does for credentials without read access to that resource.
func (s *Server) Forbid(prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidden = append(s.forbidden, prefix)
}
