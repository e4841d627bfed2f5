package iterable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/outbound"
)

// List is one of a project's lists, as GET /api/lists describes it (ListDetails in Iterable's
// API reference).
type List struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	ListType    string `json:"listType"` // Standard, Dynamic, Suppression or Internal
	CreatedAt   int64  `json:"createdAt"`
	Description string `json:"description,omitempty"`
}

// ErrKeyRefused matches the error of Lists when Iterable refuses the API key.
var ErrKeyRefused = errors.New("iterable: the API key was refused")

// BaseURLFor is the API host for a stored base URL and data center, as ParseSettings picks it:
// the EU host for data center "eu" while the base URL is the default.
func BaseURLFor(baseURL, dataCenter string) string {
	base := strings.TrimRight(baseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	if base == DefaultBaseURL && strings.EqualFold(strings.TrimSpace(dataCenter), "eu") {
		base = EUBaseURL
	}
	return base
}

// Lists reads the project's lists with key (GET /api/lists), sorted by name, which also checks
// the key: a refusal (401 or 403) matches ErrKeyRefused; anything else that goes wrong is
// returned wrapped, so the caller can tell "wrong key" from "could not check".
func Lists(ctx context.Context, hc *http.Client, baseURL, key string) ([]List, error) {
	base := strings.TrimRight(baseURL, "/")
	if err := outbound.CheckBaseURL(base); err != nil {
		return nil, fmt.Errorf("the Iterable base URL %w", err)
	}
	if strings.TrimSpace(key) == "" {
		return nil, fmt.Errorf("%w: the key is empty", ErrKeyRefused)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/lists", nil)
	if err != nil {
		return nil, fmt.Errorf("read the Iterable lists: %w", err)
	}
	req.Header.Set("Api-Key", key)
	req.Header.Set("Accept", "application/json")
	resp, err := outbound.Guard(hc, 15*time.Second).Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the Iterable lists: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w (HTTP %d)", ErrKeyRefused, resp.StatusCode)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, fmt.Errorf("read the Iterable lists: %w", decodeError("/api/lists", resp.StatusCode, raw))
	}
	var doc struct {
		Lists *[]List `json:"lists"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Lists == nil {
		return nil, fmt.Errorf("read the Iterable lists: the answer has no list of lists: %q", clip(raw))
	}
	out := *doc.Lists
	sort.SliceStable(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, nil
}
