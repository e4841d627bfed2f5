package iterable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/store"
)

// List membership follows opt-ins: the configured email lists on email opt-in, the SMS lists on
// SMS opt-in (for a contact with a phone number), leaving them on opt-out. A profile changes for
// many reasons (every order moves its LTV), so what was last synced is remembered per contact,
// item pk "A#<acct>#ITL#<email>", sk "LISTS", and a call is made only when the opt-in or the
// configured lists changed. An opt-in the source never stated (nil) changes nothing.

type listState struct {
	Email      string `json:"email,omitempty"` // "in" or "out"
	EmailLists string `json:"email_lists,omitempty"`
	SMS        string `json:"sms,omitempty"`
	SMSLists   string `json:"sms_lists,omitempty"`
}

func listsPK(account, email string) string { return "A#" + account + "#ITL#" + email }

const listsSK = "LISTS"

func optState(v *bool) string {
	switch {
	case v == nil:
		return ""
	case *v:
		return "in"
	}
	return "out"
}

func idsKey(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ",")
}

func (d *Destination) syncLists(ctx context.Context, sess *session, acct accounts.Account, s Settings, c domain.Contact) (string, error) {
	if len(s.EmailLists) == 0 && len(s.SMSLists) == 0 {
		return "", nil
	}
	var prev listState
	var version int64
	if !sess.dry {
		it, err := d.store.Get(ctx, listsPK(acct.ID, c.Email), listsSK)
		switch {
		case err == nil:
			if json.Unmarshal(it.Data, &prev) != nil {
				prev = listState{}
			}
			version = it.Version
		case !errors.Is(err, store.ErrNotFound):
			return "", fmt.Errorf("read list state of %s: %w", c.Email, err)
		}
	}
	next := prev
	var notes []string
	apply := func(channel, want string, ids []int64, have, haveLists *string, sub UserUpdate) error {
		if want == "" || len(ids) == 0 || (want == *have && idsKey(ids) == *haveLists) {
			return nil
		}
		for _, id := range ids {
			var resp BulkResponse
			var err error
			if want == "in" {
				err = sess.post(ctx, PathListsSubscribe, Subscribe{ListID: id, Subscribers: []UserUpdate{sub}}, &resp)
			} else {
				err = sess.post(ctx, PathListsUnsubscribe, Unsubscribe{ListID: id, Subscribers: []Unsubscriber{{Email: c.Email}}}, &resp)
			}
			if err != nil {
				return err
			}
			if cat, failed := resp.Failed()[c.Email]; failed || resp.FailCount > 0 {
				if cat == "" {
					cat = "failCount " + strconv.Itoa(resp.FailCount)
				}
				return deliver.Permanent(fmt.Errorf("iterable list %d refused %s (%s)", id, c.Email, cat))
			}
		}
		*have, *haveLists = want, idsKey(ids)
		verb := "subscribed to"
		if want == "out" {
			verb = "unsubscribed from"
		}
		notes = append(notes, fmt.Sprintf("%s %s lists %s", verb, channel, idsKey(ids)))
		return nil
	}
	if err := apply("email", optState(c.EmailOptIn), s.EmailLists, &next.Email, &next.EmailLists, UserUpdate{Email: c.Email}); err != nil {
		return "", err
	}
	smsWant := optState(c.SMSOptIn)
	if smsWant == "in" && !strings.HasPrefix(c.Phone, "+") {
		// SMS needs an E.164 number on the profile; subscribe once one arrives.
		smsWant = ""
	}
	smsSub := UserUpdate{Email: c.Email}
	if strings.HasPrefix(c.Phone, "+") {
		smsSub.DataFields = Fields{"phoneNumber": c.Phone}
	}
	if err := apply("SMS", smsWant, s.SMSLists, &next.SMS, &next.SMSLists, smsSub); err != nil {
		return "", err
	}
	if sess.dry || next == prev {
		return strings.Join(notes, "; "), nil
	}
	data, _ := json.Marshal(next)
	it := store.Item{PK: listsPK(acct.ID, c.Email), SK: listsSK, Data: data, Version: version + 1}
	w := store.PutIfVersion(it, version)
	if version == 0 {
		w = store.PutItem(it, store.NotExists)
	}
	if err := d.store.Write(ctx, w); err != nil && !errors.Is(err, store.ErrConditionFailed) {
		// The lists are right in Iterable; a lost record only repeats an idempotent call later.
		sess.log.Warn("could not record list state", "error", err)
	}
	return strings.Join(notes, "; "), nil
}
