package thrivecart

import (
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/phone"
)

// normalizeFull normalizes as ingest does, phones included.
func normalizeFull(d Delivery, receivedAt time.Time) ([]domain.Event, error) {
	return NormalizeWith(d, receivedAt, Options{Phone: phone.E164})
}
