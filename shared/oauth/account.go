package oauth

import (
	"fmt"
	"strings"

	"github.com/cartrelay/cartrelay/shared/accounts"
)

// AccountID is the id a store's account is created with when it first connects: the merchant
// id lower-cased, every character outside [a-z0-9] turned into a dash, runs of dashes folded,
// behind accounts.StorePrefix ("DEMO" gives "uc-demo") and cut to accounts.ValidateID's 63
// characters. The prefix keeps these ids apart from every account an operator creates; the id
// is only a name, since the account's binding (not its id) says which store it belongs to.
func AccountID(merchantID string) (string, error) {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(strings.TrimSpace(merchantID)) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	name := strings.Trim(b.String(), "-")
	if name == "" {
		return "", fmt.Errorf("merchant id %q has no letters or digits to name an account after", merchantID)
	}
	id := accounts.StorePrefix + name
	if len(id) > 63 {
		id = strings.TrimRight(id[:63], "-")
	}
	if err := accounts.ValidateID(id); err != nil {
		return "", fmt.Errorf("merchant id %q gives no usable account id: %w", merchantID, err)
	}
	return id, nil
}
