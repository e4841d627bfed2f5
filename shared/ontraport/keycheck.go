package ontraport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/outbound"
)

// ErrKeyRefused matches the error of CheckKey when ONTRAPORT refuses the app id and key.
var ErrKeyRefused = errors.New("ONTRAPORT refused the app ID and API key")

// CheckKey asks ONTRAPORT whether appID and key work, with one read of the contact fields'
// description (GET /Contacts/meta, which any key that can send contacts may read). A refusal
// (401 or 403) matches ErrKeyRefused; anything else that goes wrong (ONTRAPORT cannot be
// reached, answers 5xx) is returned wrapped, so the caller can tell "wrong key" from "could
// not check". baseURL empty means ONTRAPORT's own.
func CheckKey(ctx context.Context, hc *http.Client, baseURL, appID, key string) error {
	base := strings.TrimRight(baseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	if err := outbound.CheckBaseURL(base); err != nil {
		return fmt.Errorf("the ONTRAPORT base URL %w", err)
	}
	if strings.TrimSpace(appID) == "" || strings.TrimSpace(key) == "" {
		return fmt.Errorf("%w: both the app ID and the API key are needed", ErrKeyRefused)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/Contacts/meta", nil)
	if err != nil {
		return fmt.Errorf("check the ONTRAPORT key: %w", err)
	}
	req.Header.Set("Api-Appid", appID)
	req.Header.Set("Api-Key", key)
	req.Header.Set("Accept", "application/json")
	resp, err := outbound.Guard(hc, 15*time.Second).Do(req)
	if err != nil {
		return fmt.Errorf("check the ONTRAPORT key: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w (HTTP %d)", ErrKeyRefused, resp.StatusCode)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return fmt.Errorf("check the ONTRAPORT key: %w", &APIError{Method: http.MethodGet, Path: "/Contacts/meta", Status: resp.StatusCode, Body: shorten(string(raw), 300)})
	}
	var env struct {
		Code *int `json:"code"`
	}
	if json.Unmarshal(raw, &env) != nil || env.Code == nil {
		return fmt.Errorf("check the ONTRAPORT key: %w: GET /Contacts/meta answered %q", ErrUnexpectedResponse, shorten(string(raw), 200))
	}
	return nil
}
