package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/store"
)

// Ending sessions before they expire. A session cookie is signed and carries its issue time,
// so it needs no table read to be trusted; each request also reads the account's "sessions
// valid after" time (item pk "A#<id>", sk "SESSIONS"), and a session issued before it is over.
// Signing out, a change of the account's keys and `cartrelay console signout` move it forward;
// it never moves back.

const skSessions = "SESSIONS"

type sessionsDoc struct {
	ValidAfter time.Time `json:"valid_after"`
}

// EndSessions ends every console session of account issued before at.
func EndSessions(ctx context.Context, st store.Store, account string, at time.Time) error {
	at = at.UTC()
	for range 10 {
		it, err := st.Get(ctx, "A#"+account, skSessions)
		var w store.Write
		data, _ := json.Marshal(sessionsDoc{ValidAfter: at})
		next := store.Item{PK: "A#" + account, SK: skSessions, Version: 1, Data: data}
		switch {
		case errors.Is(err, store.ErrNotFound):
			w = store.PutItem(next, store.NotExists)
		case err != nil:
			return fmt.Errorf("read the sessions of account %s: %w", account, err)
		default:
			var d sessionsDoc
			if json.Unmarshal(it.Data, &d) == nil && !d.ValidAfter.Before(at) {
				return nil
			}
			next.Version = it.Version + 1
			w = store.PutIfVersion(next, it.Version)
		}
		err = st.Write(ctx, w)
		if errors.Is(err, store.ErrConditionFailed) {
			continue
		}
		if err != nil {
			return fmt.Errorf("end the sessions of account %s: %w", account, err)
		}
		return nil
	}
	return fmt.Errorf("end the sessions of account %s: the record kept changing", account)
}

// current reports whether sess was issued at or after its account's sessions-valid-after time.
func (c *Console) current(ctx context.Context, sess Session) (bool, error) {
	it, err := c.d.Store.Get(ctx, "A#"+sess.Account, skSessions)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the sessions of account %s: %w", sess.Account, err)
	}
	var d sessionsDoc
	if err := json.Unmarshal(it.Data, &d); err != nil {
		return false, fmt.Errorf("account %s: the stored sessions record is not JSON: %w", sess.Account, err)
	}
	return !sess.Issued.Before(d.ValidAfter), nil
}
