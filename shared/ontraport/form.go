package ontraport

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/deliver"
)

// verifyKey asks ONTRAPORT about the key a settings post gives, or about the stored key with
// the post's new app id (ONTRAPORT pairs the two), before anything is saved.
func verifyKey(ctx context.Context, in deliver.FormInput) []string {
	appID := strings.TrimSpace(in.After.Text(keyPath(keyAppID)))
	// A new app id must go with the stored key.
	plain, err := in.KeyToCheck(ctx, APIKey, appID != in.Before.Text(keyPath(keyAppID)))
	switch {
	case err != nil:
		return []string{in.Unreachable("ONTRAPORT", err)}
	case plain == "":
		return nil
	}
	err = CheckKey(ctx, in.HTTP, in.After.Text(keyPath(keyBaseURL)), appID, plain)
	switch {
	case errors.Is(err, ErrKeyRefused):
		return []string{string(APIKey) + ": ONTRAPORT refused the App ID " + strconv.Quote(appID) +
			" with this API key (both come from ONTRAPORT's Administration, Integrations, API Key Manager). Nothing was saved."}
	case err != nil:
		return []string{in.Unreachable("ONTRAPORT", err)}
	}
	return nil
}
