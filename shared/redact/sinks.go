package redact

import (
	"bytes"
	"context"
	"encoding/json"
	"io"

	"github.com/cartrelay/cartrelay/shared/store"
)

// Store wraps st so that no item is written with a value of s in its document: the delivery
// log, parked failures, quarantine reasons and poll errors all keep what vendors and parsers
// said, and none of them may keep a key a vendor echoed back. Keys and reads are untouched.
func Store(st store.Store, s *Set) store.Store {
	if s == nil {
		return st
	}
	return scrubbedStore{Store: st, set: s}
}

type scrubbedStore struct {
	store.Store
	set *Set
}

func (st scrubbedStore) Write(ctx context.Context, w store.Write) error {
	return st.Store.Write(ctx, st.clean(w))
}

func (st scrubbedStore) Transact(ctx context.Context, ws []store.Write) error {
	clean := make([]store.Write, len(ws))
	for i, w := range ws {
		clean[i] = st.clean(w)
	}
	return st.Store.Transact(ctx, clean)
}

func (st scrubbedStore) clean(w store.Write) store.Write {
	if w.Op == store.OpPut && len(w.Item.Data) > 0 {
		w.Item.Data = st.set.Bytes(w.Item.Data)
	}
	return w
}

// Writer wraps w so that what a command prints holds no value of s. Each Write is scrubbed on
// its own, so callers write whole documents or lines (the CLI does).
func Writer(w io.Writer, s *Set) io.Writer {
	if s == nil {
		return w
	}
	return scrubbedWriter{w: w, set: s}
}

type scrubbedWriter struct {
	w   io.Writer
	set *Set
}

// Write reports len(p) on success even when the scrubbed text is shorter or longer.
func (sw scrubbedWriter) Write(p []byte) (int, error) {
	clean := sw.set.Bytes(p)
	if len(clean) != len(p) || !bytes.Equal(clean, p) {
		clean = reshape(p, clean)
	}
	if _, err := sw.w.Write(clean); err != nil {
		return 0, err
	}
	return len(p), nil
}

// reshape gives a scrubbed JSON document the indentation and final line break of the original,
// which Bytes drops when it rewrites the document.
func reshape(orig, clean []byte) []byte {
	if t := bytes.TrimLeft(orig, " \t\r\n"); len(t) > 1 && (t[0] == '{' || t[0] == '[') && bytes.HasPrefix(t[1:], []byte("\n ")) {
		var b bytes.Buffer
		if json.Indent(&b, clean, "", "  ") == nil {
			clean = b.Bytes()
		}
	}
	if bytes.HasSuffix(orig, []byte("\n")) && !bytes.HasSuffix(clean, []byte("\n")) {
		clean = append(clean, '\n')
	}
	return clean
}
