package ultracart

import (
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/phone"
)

// normalizeFull normalizes as ingest does, phones included.
func normalizeFull(ev RawEvent, receivedAt time.Time) ([]domain.Event, error) {
	return NormalizeWith(ev, receivedAt, Options{Phone: phone.E164})
}
