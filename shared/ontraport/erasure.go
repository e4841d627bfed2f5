package ontraport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// Erasure modes (ontraport.erasure): what happens to the ONTRAPORT contact of an erased contact.
const (
	// ErasureAnonymize blanks the contact's personal fields and gives it the pseudonym as its
	// email: its transactions stay, so ONTRAPORT's revenue reports still add up, and what
	// cartrelay later sends about the pseudonym (a refund of an erased order) reaches it.
	ErasureAnonymize = "anonymize"
	// ErasureDelete deletes the contact (DELETE /Contact).
	ErasureDelete = "delete"
)

// personalFields are the standard contact fields that say who someone is; anonymizing blanks
// them all. Custom fields cartrelay keeps (lifetime value, purchase count, subscription status)
// describe purchases and stay.
var personalFields = []string{"firstname", "lastname", "address", "address2", "city", "state", "zip", "country",
	"office_phone", "home_phone", "sms_number", "company", "title", "website", "birthday"}

// erasureDone is remembered with an erasure.
type erasureDone struct {
	Action     string  `json:"action"`
	ContactIDs []int64 `json:"contact_ids,omitempty"`
}

// contactErased deletes or anonymizes the ONTRAPORT contacts of an erased contact's addresses,
// per the account's ontraport.erasure: the contact cartrelay remembered, and whatever contact
// ONTRAPORT has for each address.
func (s *session) contactErased(ctx context.Context, f domain.Fact) (result, error) {
	e := f.Erasure
	if e == nil || len(e.Emails) == 0 {
		return result{}, fmt.Errorf("%w: ContactErased without the addresses to forget", ErrBadFact)
	}
	var ids []int64
	add := func(id int64) {
		if id > 0 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if v := e.DestinationIDs[Name]; v != "" {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil {
			add(id)
		}
	}
	for _, email := range e.Emails {
		id, err := s.cache.contact(ctx, email)
		if err != nil {
			return result{}, err
		}
		add(id)
		found, _, err := s.c.contactIDByEmail(ctx, email)
		if err != nil {
			return result{}, err
		}
		add(found)
	}
	if len(ids) == 0 {
		return s.skip("ONTRAPORT has no contact for the erased addresses")
	}
	done := erasureDone{Action: s.cfg.erasure, ContactIDs: ids}
	for i, id := range ids {
		var err error
		if s.cfg.erasure == ErasureDelete {
			err = s.deleteContact(ctx, id)
		} else {
			err = s.anonymize(ctx, id, e.Pseudonym, i)
		}
		if err != nil {
			return result{}, err
		}
	}
	if s.cfg.erasure == ErasureDelete {
		s.note("deleted %d ONTRAPORT contact(s)", len(ids))
	} else {
		s.note("anonymized %d ONTRAPORT contact(s); their transactions stay", len(ids))
	}
	return sent(done), nil
}

// anonymize blanks contact id's personal fields and gives it the pseudonym as its email. A
// second contact of the same person (erased again after coming back) takes the pseudonym with
// its id after a plus, as ONTRAPORT keeps emails unique.
func (s *session) anonymize(ctx context.Context, id int64, pseudonym string, nth int) error {
	email := pseudonym
	if nth > 0 {
		email = plusAddress(pseudonym, id)
	} else if other, found, err := s.c.contactIDByEmail(ctx, pseudonym); err != nil {
		return err
	} else if found && other != id {
		email = plusAddress(pseudonym, id)
	}
	fields := map[string]any{"email": email}
	for _, k := range personalFields {
		fields[k] = ""
	}
	if err := s.c.updateContact(ctx, id, fields); err != nil {
		return err
	}
	if email == pseudonym {
		if err := s.cache.putContact(ctx, pseudonym, id); err != nil {
			s.log.Warn("could not remember the anonymized contact's id", slog.Any("error", err))
		}
	}
	return nil
}

func plusAddress(email string, id int64) string {
	local, dom, _ := strings.Cut(email, "@")
	return local + "+" + strconv.FormatInt(id, 10) + "@" + dom
}

// deleteContact deletes contact id (DELETE /Contact?id=). A contact that is gone already (a
// repeat after a lost answer) counts as deleted: ONTRAPORT answers a missing id with a 4xx, and
// reading the contact then fails the same way.
func (s *session) deleteContact(ctx context.Context, id int64) error {
	q := url.Values{"id": {strconv.FormatInt(id, 10)}}
	_, err := s.c.do(ctx, call{method: http.MethodDelete, path: pathContact, query: q, safe: true})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Temporary() || ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden {
		return err
	}
	_, gerr := s.c.do(ctx, call{method: http.MethodGet, path: pathContact, query: q, safe: true})
	var ge *APIError
	if errors.As(gerr, &ge) && !ge.Temporary() && ge.Status != http.StatusUnauthorized && ge.Status != http.StatusForbidden {
		s.note("contact %d was deleted already", id)
		return nil
	}
	return err
}
