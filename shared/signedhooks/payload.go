package signedhooks

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// Payload is the body of every request, in the shape the Standard Webhooks specification
// suggests: examples/webhook-payload.schema.json describes it.
type Payload struct {
	// Type is the fact kind ("OrderPlaced").
	Type domain.FactKind `json:"type"`
	// Timestamp is when the change happened at the source (the fact's occurred_at); the
	// webhook-timestamp header is when the request was signed.
	Timestamp time.Time `json:"timestamp"`
	// Data is the fact as cartrelay keeps it; data.id is also the webhook-id header.
	Data domain.Fact `json:"data"`
}

// Encode is the request body for f: JSON without HTML escaping, so URLs keep their "&".
func Encode(f domain.Fact) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Payload{Type: f.Kind, Timestamp: f.OccurredAt.UTC(), Data: f}); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
