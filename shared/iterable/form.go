package iterable

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/deliver"
)

// verifyKey asks Iterable about the key a settings post gives, or about the stored key in the
// post's new data center (a key works in its own data center only), before anything is saved.
func verifyKey(ctx context.Context, in deliver.FormInput) []string {
	center := strings.TrimSpace(in.After.Text(keyPath(keyDataCenter)))
	// A key works in its own data center only.
	plain, err := in.KeyToCheck(ctx, APIKey, !strings.EqualFold(center, in.Before.Text(keyPath(keyDataCenter))))
	switch {
	case err != nil:
		return []string{in.Unreachable("Iterable", err)}
	case plain == "":
		return nil
	}
	_, err = Lists(ctx, in.HTTP, BaseURLFor(in.After.Text(keyPath(keyBaseURL)), center), plain)
	switch {
	case errors.Is(err, ErrKeyRefused):
		return []string{string(APIKey) + ": Iterable refused this API key in the " + dataCenterName(center) +
			" data center (use a server-side key of the project, from Integrations, API Keys). Nothing was saved."}
	case err != nil:
		return []string{in.Unreachable("Iterable", err)}
	}
	return nil
}

func dataCenterName(dc string) string {
	if strings.EqualFold(dc, "eu") {
		return "EU"
	}
	return "US"
}

// listChoices are the project's lists, read with the stored key, for the list settings the
// console shows (email and SMS lists): picked by name rather than typed as ids.
func listChoices(ctx context.Context, in deliver.FormInput) deliver.Choices {
	c := deliver.Choices{
		None: "The Iterable project has no lists yet; create one in Iterable and reload this page.",
		Stale: func(id string) deliver.Choice {
			return deliver.Choice{Value: id, Name: "list #" + id, Note: "(not among the project's lists any more)"}
		},
	}
	if !in.Before.SecretAt(string(APIKey)).IsSet() {
		c.Why = "Set the Iterable API key to pick the lists by name."
		return c
	}
	key, err := in.Open(ctx, APIKey)
	if err != nil {
		in.Log.Warn("console: iterable key not opened", slog.Any("error", err))
		c.Why = "The stored Iterable API key could not be read just now; reload the page to try again."
		return c
	}
	lists, err := Lists(ctx, in.HTTP, BaseURLFor(in.Before.Text(keyPath(keyBaseURL)), in.Before.Text(keyPath(keyDataCenter))), key.Reveal())
	switch {
	case errors.Is(err, ErrKeyRefused):
		c.Why = "Iterable refuses the stored API key, so its lists cannot be shown; set a working key."
		return c
	case err != nil:
		in.Log.Warn("console: iterable lists unreadable", slog.Any("error", err))
		c.Why = "Iterable could not be reached to show the lists by name; reload the page to try again."
		return c
	}
	for _, l := range lists {
		if l.ListType == "Suppression" || l.ListType == "Internal" {
			continue // cartrelay subscribes contacts; these are not lists one joins
		}
		id := strconv.FormatInt(l.ID, 10)
		c.Options = append(c.Options, deliver.Choice{Value: id, Name: l.Name, Note: "#" + id + " · " + strings.ToLower(l.ListType)})
	}
	return c
}
