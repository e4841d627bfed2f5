package ultracartfake

// RevokeAccessTokens invalidates every access token issued so far before its expiry, as
// UltraCart may; requests with them get 401, while refresh tokens keep working.
func (s *Server) RevokeAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.oauth.access)
}
