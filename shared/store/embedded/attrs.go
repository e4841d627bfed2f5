package embedded

import (
	"encoding/binary"
	"errors"
	"maps"
	"slices"
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
	// A rebuilt rollup item has hundreds of counters: their names are gathered once, at their
	// number, and sorted in place.
	names := make([]string, 0, len(counters))
	for name, v := range counters {
		if v != 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 && len(labels) == 0 {
		return nil
	}
	slices.Sort(names)
	b := make([]byte, 0, 16+24*len(names)+48*len(labels))
	b = append(b, attrsVersion)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendVarint(b, counters[name])
	}
	b = binary.AppendUvarint(b, uint64(len(labels)))
	for _, name := range slices.Sorted(maps.Keys(labels)) {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendUvarint(b, uint64(len(labels[name])))
		b = append(b, labels[name]...)
	}
	return b
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
