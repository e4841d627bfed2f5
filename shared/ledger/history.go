package ledger

import (
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// Cutover is an account's history cutover (docs/architecture.md, History cutover): source events older than
// ForwardSince are history. They are stored and reported, but toward destinations they only
// refresh profiles unless the account opts in. The zero Cutover makes nothing historical.
type Cutover struct {
	ForwardSince time.Time
}

// Historical reports whether something that happened at t is history. A zero t counts as
// history once a cutover is set: a fact that cannot be dated cannot prove it is new, and firing a
// purchase campaign on a years-old order is the failure to avoid.
func (c Cutover) Historical(t time.Time) bool {
	if c.ForwardSince.IsZero() {
		return false
	}
	return t.IsZero() || t.Before(c.ForwardSince)
}

// HistoryMode is what a destination receives of historical facts (an account setting per
// destination).
type HistoryMode string

// History modes.
const (
	// HistoryNone: no historical fact.
	HistoryNone HistoryMode = "none"
	// HistoryProfiles: only profile facts (ContactChanged, EmailChanged, ItemChanged), which
	// update records without triggering campaigns. The default.
	HistoryProfiles HistoryMode = "profiles"
	// HistoryAll: every fact, campaigns included; an explicit opt-in for a backfill.
	HistoryAll HistoryMode = "all"
)

// ErrHistoryMode is returned by ParseHistoryMode for a value that is not a mode.
var ErrHistoryMode = fmt.Errorf("history mode must be %s, %s or %s", HistoryNone, HistoryProfiles, HistoryAll)

// ParseHistoryMode validates a configured mode; "" is the default, HistoryProfiles.
func ParseHistoryMode(s string) (HistoryMode, error) {
	switch m := HistoryMode(s); m {
	case "":
		return HistoryProfiles, nil
	case HistoryNone, HistoryProfiles, HistoryAll:
		return m, nil
	}
	return "", fmt.Errorf("%w, not %q", ErrHistoryMode, s)
}

// Route reports whether a destination in the given mode receives f. Facts that are not
// historical always go. Historical facts go according to the mode; an empty or unknown mode
// acts as HistoryProfiles, so a misconfiguration can never fire campaigns on a backfill.
func Route(f domain.Fact, mode HistoryMode) bool {
	if !f.Historical {
		return true
	}
	switch mode {
	case HistoryNone:
		return false
	case HistoryAll:
		return true
	}
	return isProfileFact(f.Kind)
}

// isProfileFact: facts that refresh what a destination knows rather than report something
// happening now. The catalogue is not a campaign trigger either.
func isProfileFact(k domain.FactKind) bool {
	switch k {
	case domain.FactContactChanged, domain.FactEmailChanged, domain.FactItemChanged:
		return true
	}
	return false
}
