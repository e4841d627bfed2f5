package app

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/store"
)

// SourceEvent is one raw source event on its way from a webhook or a poller to ingest. It keeps
// the source's own payload untouched, so ingest is the one place that interprets it and a
// quarantined event can be replayed byte for byte.
type SourceEvent struct {
	Account    string          `json:"account"`
	Source     domain.Source   `json:"source"`
	Name       string          `json:"name"`
	Payload    json.RawMessage `json:"payload"`
	ReceivedAt time.Time       `json:"received_at"`
	// Delivery identifies the HTTP delivery (or poll page) the event came in, and Index its
	// place there, for tracing an event back to what the source sent.
	Delivery string `json:"delivery,omitempty"`
	Index    int    `json:"index"`
	// Via is "webhook", "poll" or "replay".
	Via string `json:"via,omitempty"`
	// Problem is set when the receiver could already tell the event is unusable; ingest then
	// quarantines it with this reason instead of interpreting it.
	Problem string `json:"problem,omitempty"`
}

// ContentHash identifies the event by what it says (not by when or how it arrived), so the same
// event delivered twice, by webhook and by poller, is recognised as one.
func (e SourceEvent) ContentHash() string {
	return source.ID(e.Account, e.Source, e.Name, e.Payload)
}

// The wire form of an ingest message is one of:
//
//	{"v":2,...header...}\n<payload>  the event: a one-line JSON header, then the source payload
//	                                 as it arrived
//	{"v":2,"gz":"<base64 gzip>"}     the above, gzipped, when it is too big for one message
//	{"v":2,"ref":"<id>","parts":N}   the gzipped event in N table items, when even that is too big
//
// Keeping the payload outside the header means ingest reads it without decoding it twice (a
// nested JSON value must be scanned in full just to find where it ends), which is a third of
// ingest's CPU on a large order. The design rules out S3 (docs/architecture.md, Queues), so the table holds
// what SQS cannot.
type wireHeader struct {
	V     int          `json:"v"`
	Event *SourceEvent `json:"event,omitempty"`
	GZ    string       `json:"gz,omitempty"`
	Ref   string       `json:"ref,omitempty"`
	Parts int          `json:"parts,omitempty"`
}

const wireVersion = 2

// inlineLimit leaves room under SQS's 256 KiB for attributes and the envelope.
const inlineLimit = queue.MaxBodyBytes - 8*1024

// blobChunk keeps each table item well under DynamoDB's 400 KB item limit.
const blobChunk = 300 * 1024

// blobTTL bounds how long a chunked payload waits for ingest; far longer than any redrive.
const blobTTL = 30 * 24 * time.Hour

// ErrBadMessage is wrapped when an ingest message cannot be read back; such a message can never
// succeed, so the consumer parks it instead of retrying it.
var ErrBadMessage = errors.New("unreadable ingest message")

// frame writes e as a header line followed by its payload.
func frame(e SourceEvent) ([]byte, error) {
	payload := e.Payload
	e.Payload = nil
	head, err := json.Marshal(wireHeader{V: wireVersion, Event: &e})
	if err != nil {
		return nil, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, payload); err == nil {
		payload = compact.Bytes()
	}
	out := make([]byte, 0, len(head)+1+len(payload))
	out = append(append(append(out, head...), '\n'), payload...)
	return out, nil
}

// unframe reads what frame wrote.
func unframe(b []byte) (SourceEvent, error) {
	head, payload, ok := bytes.Cut(b, []byte{'\n'})
	var h wireHeader
	if !ok || json.Unmarshal(head, &h) != nil || h.V != wireVersion || h.Event == nil {
		return SourceEvent{}, fmt.Errorf("%w: not a framed event", ErrBadMessage)
	}
	h.Event.Payload = json.RawMessage(payload)
	return *h.Event, nil
}

// EncodeSourceEvent turns e into a queue message body, compressing it or storing it in the table
// when it is too large for one message. Nothing is ever dropped for size.
func EncodeSourceEvent(ctx context.Context, st store.Store, now time.Time, e SourceEvent) (string, error) {
	plain, err := frame(e)
	if err != nil {
		return "", fmt.Errorf("encode event %d of %s: %w", e.Index, e.Delivery, err)
	}
	if len(plain) <= inlineLimit {
		return string(plain), nil
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(plain)
	if err := zw.Close(); err != nil {
		return "", err
	}
	b64 := base64.StdEncoding.EncodeToString(gz.Bytes())
	if len(b64)+64 <= inlineLimit {
		out, err := json.Marshal(wireHeader{V: wireVersion, GZ: b64})
		return string(out), err
	}
	ref := e.ContentHash() + fmt.Sprintf("-%d", now.UnixNano())
	data := gz.Bytes()
	parts := 0
	for off := 0; off < len(data); off += blobChunk {
		end := min(off+blobChunk, len(data))
		it := store.Item{PK: "BLOB#" + ref, SK: fmt.Sprintf("%05d", parts), Data: data[off:end], ExpiresAt: now.Add(blobTTL)}
		if err := st.Write(ctx, store.PutItem(it, store.Always)); err != nil {
			return "", fmt.Errorf("store part %d of a %d-byte event: %w", parts, len(plain), err)
		}
		parts++
	}
	out, err := json.Marshal(wireHeader{V: wireVersion, Ref: ref, Parts: parts})
	return string(out), err
}

// DecodeSourceEvent reads a message body written by EncodeSourceEvent.
func DecodeSourceEvent(ctx context.Context, st store.Store, body string) (SourceEvent, error) {
	b := []byte(body)
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return unframe(b)
	}
	var w wireHeader
	if err := json.Unmarshal(b, &w); err != nil {
		return SourceEvent{}, fmt.Errorf("%w: not JSON: %v", ErrBadMessage, err)
	}
	if w.V != wireVersion {
		return SourceEvent{}, fmt.Errorf("%w: unknown version %d", ErrBadMessage, w.V)
	}
	switch {
	case w.GZ != "":
		data, err := base64.StdEncoding.DecodeString(w.GZ)
		if err != nil {
			return SourceEvent{}, fmt.Errorf("%w: compressed body is not base64: %v", ErrBadMessage, err)
		}
		return gunzipEvent(data)
	case w.Ref != "":
		items, err := store.QueryAll(ctx, st, store.Query{PK: "BLOB#" + w.Ref})
		if err != nil {
			return SourceEvent{}, fmt.Errorf("read stored event %s: %w", w.Ref, err)
		}
		if len(items) != w.Parts {
			return SourceEvent{}, fmt.Errorf("%w: stored event %s has %d of %d parts", ErrBadMessage, w.Ref, len(items), w.Parts)
		}
		var data []byte
		for _, it := range items {
			data = append(data, it.Data...)
		}
		return gunzipEvent(data)
	}
	return SourceEvent{}, fmt.Errorf("%w: no event, gz or ref", ErrBadMessage)
}

// maxEventBytes guards ingest against a compressed message that expands without bound.
const maxEventBytes = 64 << 20

func gunzipEvent(data []byte) (SourceEvent, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return SourceEvent{}, fmt.Errorf("%w: compressed body: %v", ErrBadMessage, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxEventBytes+1))
	if err != nil {
		return SourceEvent{}, fmt.Errorf("%w: compressed body: %v", ErrBadMessage, err)
	}
	if len(raw) > maxEventBytes {
		return SourceEvent{}, fmt.Errorf("%w: event expands beyond %d bytes", ErrBadMessage, maxEventBytes)
	}
	return unframe(raw)
}

// quarantineMessages reads kept-raw ingest messages for an erasure (erasure.QuarantineReader).
type quarantineMessages struct{ st store.Store }

// Payload is what the source sent.
func (q quarantineMessages) Payload(ctx context.Context, message string) ([]byte, error) {
	e, err := DecodeSourceEvent(ctx, q.st, message)
	return e.Payload, err
}

// Discard deletes the table items holding the parts of an event too large for a message.
func (q quarantineMessages) Discard(ctx context.Context, message string) error {
	b := []byte(message)
	if bytes.IndexByte(b, '\n') >= 0 {
		return nil
	}
	var w wireHeader
	if json.Unmarshal(b, &w) != nil || w.Ref == "" {
		return nil
	}
	_, err := store.DeletePartition(ctx, q.st, "BLOB#"+w.Ref)
	return err
}
