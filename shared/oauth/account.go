package oauth

import (
	"fmt"
	"strings"

	"github.com/cartrelay/cartrelay/shared/accounts"
)

// AccountID derives the account id from an UltraCart merchant id, so reconnecting the same
// store finds the same account: lower-cased, every character outside [a-z0-9] turned into a
// dash, runs of dashes folded, and trimmed to accounts.ValidateID's 2 to 63 characters. A
// one-character merchant id gets a "uc-" prefix.
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
	id := strings.Trim(b.String(), "-")
	if len(id) > 63 {
		id = strings.TrimRight(id[:63], "-")
	}
	if len(id) == 1 {
		id = "uc-" + id
	}
	if err := accounts.ValidateID(id); err != nil {
		return "", fmt.Errorf("merchant id %q gives no usable account id: %w", merchantID, err)
	}
	return id, nil
}
