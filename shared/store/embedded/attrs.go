package embedded

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
)

// An item's counters and labels live in one BLOB column, in a compact binary form that an add
// reads and rewrites inside its transaction:
//
//	version byte (1), uvarint #counters, then per counter: uvarint len, name, zigzag varint value;
//	uvarint #labels, then per label: uvarint len, name, uvarint len, value.
//
// Names are sorted so the same attributes always encode the same way. Counters at zero are not
// stored: the port reads them as absent.
const attrsVersion = 1

var errAttrs = errors.New("stored counters are unreadable")

func encodeAttrs(counters map[string]int64, labels map[string]string) []byte {
	// A rebuilt rollup item has hundreds of counters. They are gathered once, at their number,
	// with their values, and put in order through a slice of keys that holds no pointers (so
	// the sort moves 16 bytes and no write barrier) and compares as integers: each name's first
	// eight bytes, then its place, which breaks a tie by comparing the names themselves.
	cs := make([]string, 0, len(counters))
	vs := make([]int64, 0, len(counters))
	for name, v := range counters {
		if v != 0 {
			cs = append(cs, name)
			vs = append(vs, v)
		}
	}
	if len(cs) == 0 && len(labels) == 0 {
		return nil
	}
	ls := make([]string, 0, len(labels))
	lv := make([]string, 0, len(labels))
	size := 16
	for name, v := range labels {
		ls = append(ls, name)
		lv = append(lv, v)
		size += 12 + len(name) + len(v)
	}
	for _, name := range cs {
		size += 12 + len(name)
	}
	b := make([]byte, 0, size)
	b = append(b, attrsVersion)
	b = binary.AppendUvarint(b, uint64(len(cs)))
	for _, k := range sortedAttrs(cs) {
		b = binary.AppendUvarint(b, uint64(len(cs[k.i])))
		b = append(b, cs[k.i]...)
		b = binary.AppendVarint(b, vs[k.i])
	}
	b = binary.AppendUvarint(b, uint64(len(ls)))
	for _, k := range sortedAttrs(ls) {
		b = binary.AppendUvarint(b, uint64(len(ls[k.i])))
		b = append(b, ls[k.i]...)
		b = binary.AppendUvarint(b, uint64(len(lv[k.i])))
		b = append(b, lv[k.i]...)
	}
	return b
}

// attrKey is a name's first eight bytes, big-endian and padded with zeros (so keys order as
// the names do wherever they differ), and the name's place.
type attrKey struct {
	prefix uint64
	i      uint32
}

// sortedAttrs returns the keys of names in name order.
func sortedAttrs(names []string) []attrKey {
	keys := make([]attrKey, len(names))
	for i, name := range names {
		var b [8]byte
		copy(b[:], name)
		keys[i] = attrKey{binary.BigEndian.Uint64(b[:]), uint32(i)}
	}
	slices.SortFunc(keys, func(a, b attrKey) int {
		if a.prefix != b.prefix {
			return cmp.Compare(a.prefix, b.prefix)
		}
		// Equal prefixes: a short name padded with zeros has the key of a longer one that
		// goes on with zero bytes, so the whole names decide.
		return strings.Compare(names[a.i], names[b.i])
	})
	return keys
}

func decodeAttrs(b []byte) (counters map[string]int64, labels map[string]string, err error) {
	if len(b) == 0 {
		return nil, nil, nil
	}
	if b[0] != attrsVersion {
		return nil, nil, errAttrs
	}
	// Every name and label is a slice of one copy of the blob: a day's rollup item holds
	// hundreds of them, and one allocation instead of one each is most of what reading a year
	// of items costs.
	r := attrReader{b: b[1:], s: string(b[1:])}
	n := r.uvarint()
	if n > 0 && r.err == nil {
		counters = make(map[string]int64, min(n, uint64(len(r.b))))
		for i := uint64(0); i < n && r.err == nil; i++ {
			name := r.str()
			counters[name] = r.varint()
		}
	}
	n = r.uvarint()
	if n > 0 && r.err == nil {
		labels = make(map[string]string, min(n, uint64(len(r.b))))
		for i := uint64(0); i < n && r.err == nil; i++ {
			name := r.str()
			labels[name] = r.str()
		}
	}
	if r.err != nil || r.off != len(r.b) {
		return nil, nil, errAttrs
	}
	return counters, labels, nil
}

// attrReader reads b from off; s is b as a string, which names and labels are sliced from.
type attrReader struct {
	b   []byte
	s   string
	off int
	err error
}

func (r *attrReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.err = errAttrs
		return 0
	}
	r.off += n
	return v
}

func (r *attrReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.err = errAttrs
		return 0
	}
	r.off += n
	return v
}

func (r *attrReader) str() string {
	l := r.uvarint()
	if r.err != nil {
		return ""
	}
	if l > uint64(len(r.b)-r.off) {
		r.err = errAttrs
		return ""
	}
	s := r.s[r.off : r.off+int(l)]
	r.off += int(l)
	return s
}

// addAttrs applies an add to decoded counters and labels and returns them (maps may be new).
func addAttrs(counters map[string]int64, labels map[string]string, add map[string]int64, set map[string]string) (map[string]int64, map[string]string, error) {
	if len(add) > 0 && counters == nil {
		counters = make(map[string]int64, len(add))
	}
	for name, d := range add {
		v := counters[name]
		s := v + d
		if (v^s)&(d^s) < 0 {
			return nil, nil, errCounterOverflow
		}
		if s == 0 {
			delete(counters, name)
		} else {
			counters[name] = s
		}
	}
	if len(set) > 0 && labels == nil {
		labels = make(map[string]string, len(set))
	}
	for name, v := range set {
		labels[name] = v
	}
	return counters, labels, nil
}

var errCounterOverflow = errors.New("a counter would leave the 64-bit range")
