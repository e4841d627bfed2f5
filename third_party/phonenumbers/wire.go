package phonenumbers

// cartrelay: the metadata is read from the protobuf wire format (phonemetadata.proto) by the
// reader below instead of google.golang.org/protobuf, whose runtime made every binary linking
// this library 0.6 MB larger for three messages. It accepts and rejects what proto.Unmarshal
// does for these messages (fuzzed against it in wire_test.go): unknown fields, and known ones
// with another wire type, are skipped; a message field seen twice is merged; repeated int32
// fields may be packed or not; a missing required field is an error. Strings are slices of the
// decoded input rather than copies, and messages and the values fields point to are allocated
// in blocks: reading the territories takes about 3,200 allocations and 0.77 MB where
// proto.Unmarshal took 23,800 and 0.90 MB (BenchmarkDecodeMetadata).

import (
	"errors"
	"fmt"
)

// Wire types (https://protobuf.dev/programming-guides/encoding/).
const (
	wireVarint     = 0
	wireFixed64    = 1
	wireBytes      = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireFixed32    = 5
)

const (
	maxFieldNumber = 1<<29 - 1
	maxInt32       = 1<<31 - 1
	// groupDepthLimit is protowire.DefaultRecursionLimit, how deeply unknown groups may nest.
	groupDepthLimit = 10000
)

var errWireFormat = errors.New("phonenumbers: metadata is not valid protobuf wire format")

// unmarshalMetadataCollection decodes a PhoneMetadataCollection as proto.Unmarshal would.
func unmarshalMetadataCollection(b []byte) (*PhoneMetadataCollection, error) {
	d := &wireDecoder{}
	coll := &PhoneMetadataCollection{}
	if err := d.collection(string(b), coll); err != nil {
		return nil, err
	}
	return coll, nil
}

// wireDecoder holds the blocks the decoded fields point into.
type wireDecoder struct {
	strings block[string]
	int32s  block[int32]
	bools   block[bool]
	descs   block[PhoneNumberDesc]
	formats block[NumberFormat]
	regions block[PhoneMetadata]
}

// block hands out pointers to values stored in shared arrays, one allocation per 256 values.
type block[T any] struct{ buf []T }

func (b *block[T]) new(v T) *T {
	if len(b.buf) == cap(b.buf) {
		b.buf = make([]T, 0, 256)
	}
	b.buf = append(b.buf, v)
	return &b.buf[len(b.buf)-1]
}

// wireField is one field of a message: its number, wire type and, for the two wire types the
// metadata uses, its value.
type wireField struct {
	num    int32
	typ    int
	varint uint64 // wireVarint
	bytes  string // wireBytes: a string, a packed array or an embedded message
}

// fields calls set for each field of the message s whose wire type is varint or bytes, and
// skips the others, failing on malformed input as proto.Unmarshal does.
func fields(s string, set func(f wireField) error) error {
	for len(s) > 0 {
		tag, n := consumeVarint(s)
		if n < 0 {
			return errWireFormat
		}
		s = s[n:]
		if num := tag >> 3; num < 1 || num > maxFieldNumber {
			return fmt.Errorf("%w: field number %d", errWireFormat, num)
		}
		f := wireField{num: int32(tag >> 3), typ: int(tag & 7)}
		switch f.typ {
		case wireVarint:
			f.varint, n = consumeVarint(s)
		case wireBytes:
			f.bytes, n = consumeBytes(s)
		default:
			n = skipValue(f.num, f.typ, s, groupDepthLimit)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d", errWireFormat, f.num)
		}
		s = s[n:]
		if f.typ == wireVarint || f.typ == wireBytes {
			if err := set(f); err != nil {
				return err
			}
		}
	}
	return nil
}

// consumeVarint returns the varint at the start of s and its length, or a negative length if
// it is truncated or longer than 64 bits.
func consumeVarint(s string) (uint64, int) {
	var v uint64
	for i := 0; i < 10; i++ {
		if i >= len(s) {
			return 0, -1
		}
		c := uint64(s[i])
		if i == 9 && c > 1 {
			return 0, -1
		}
		v |= (c & 0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}

// consumeBytes returns the length-delimited value at the start of s and the length consumed.
func consumeBytes(s string) (string, int) {
	m, n := consumeVarint(s)
	if n < 0 || m > uint64(len(s)-n) {
		return "", -1
	}
	return s[n : n+int(m)], n + int(m)
}

// skipValue returns the length of the value of field num of wire type typ at the start of s,
// which for a group is everything up to its matching end, or -1 if it is malformed.
func skipValue(num int32, typ int, s string, depth int) int {
	switch typ {
	case wireVarint:
		_, n := consumeVarint(s)
		return n
	case wireFixed32:
		if len(s) < 4 {
			return -1
		}
		return 4
	case wireFixed64:
		if len(s) < 8 {
			return -1
		}
		return 8
	case wireBytes:
		_, n := consumeBytes(s)
		return n
	case wireStartGroup:
		if depth < 0 {
			return -1
		}
		start := len(s)
		for {
			tag, n := consumeVarint(s)
			if n < 0 || tag>>3 < 1 || tag>>3 > maxInt32 {
				return -1
			}
			s = s[n:]
			num2, typ2 := int32(tag>>3), int(tag&7)
			if typ2 == wireEndGroup {
				if num2 != num {
					return -1
				}
				return start - len(s)
			}
			if n = skipValue(num2, typ2, s, depth-1); n < 0 {
				return -1
			}
			s = s[n:]
		}
	}
	return -1 // an end group without its start, or a reserved wire type
}

func (d *wireDecoder) collection(s string, c *PhoneMetadataCollection) error {
	return fields(s, func(f wireField) error {
		if f.num == 1 && f.typ == wireBytes {
			m := d.regions.new(PhoneMetadata{})
			if err := d.metadata(f.bytes, m); err != nil {
				return err
			}
			c.Metadata = append(c.Metadata, m)
		}
		return nil
	})
}

func (d *wireDecoder) metadata(s string, m *PhoneMetadata) error {
	err := fields(s, func(f wireField) error {
		if f.typ == wireVarint {
			switch f.num {
			case 10:
				m.CountryCode = d.int32s.new(int32(f.varint))
			case 18:
				m.SameMobileAndFixedLinePattern = d.bools.new(f.varint != 0)
			case 22:
				m.MainCountryForCode = d.bools.new(f.varint != 0)
			case 26:
				m.LeadingZeroPossible = d.bools.new(f.varint != 0)
			case 32:
				m.MobileNumberPortableRegion = d.bools.new(f.varint != 0)
			}
			return nil
		}
		if desc := m.descField(f.num); desc != nil {
			if *desc == nil {
				*desc = d.descs.new(PhoneNumberDesc{})
			}
			return d.desc(f.bytes, *desc)
		}
		if str := m.stringField(f.num); str != nil {
			*str = d.strings.new(f.bytes)
			return nil
		}
		if f.num == 19 || f.num == 20 {
			nf := d.formats.new(NumberFormat{})
			if err := d.numberFormat(f.bytes, nf); err != nil {
				return err
			}
			if f.num == 19 {
				m.NumberFormat = append(m.NumberFormat, nf)
			} else {
				m.IntlNumberFormat = append(m.IntlNumberFormat, nf)
			}
		}
		return nil
	})
	if err == nil && m.Id == nil {
		err = fmt.Errorf("%w: PhoneMetadata without its id", errWireFormat)
	}
	return err
}

// descField returns the PhoneNumberDesc field numbered num, or nil.
func (m *PhoneMetadata) descField(num int32) **PhoneNumberDesc {
	switch num {
	case 1:
		return &m.GeneralDesc
	case 2:
		return &m.FixedLine
	case 3:
		return &m.Mobile
	case 4:
		return &m.TollFree
	case 5:
		return &m.PremiumRate
	case 6:
		return &m.SharedCost
	case 7:
		return &m.PersonalNumber
	case 8:
		return &m.Voip
	case 21:
		return &m.Pager
	case 24:
		return &m.NoInternationalDialling
	case 25:
		return &m.Uan
	case 27:
		return &m.Emergency
	case 28:
		return &m.Voicemail
	case 29:
		return &m.ShortCode
	case 30:
		return &m.StandardRate
	case 31:
		return &m.CarrierSpecific
	case 33:
		return &m.SmsServices
	}
	return nil
}

// stringField returns the string field numbered num, or nil.
func (m *PhoneMetadata) stringField(num int32) **string {
	switch num {
	case 9:
		return &m.Id
	case 11:
		return &m.InternationalPrefix
	case 12:
		return &m.NationalPrefix
	case 13:
		return &m.PreferredExtnPrefix
	case 15:
		return &m.NationalPrefixForParsing
	case 16:
		return &m.NationalPrefixTransformRule
	case 17:
		return &m.PreferredInternationalPrefix
	case 23:
		return &m.LeadingDigits
	}
	return nil
}

func (d *wireDecoder) desc(s string, pd *PhoneNumberDesc) error {
	return fields(s, func(f wireField) error {
		switch {
		case f.num == 2 && f.typ == wireBytes:
			pd.NationalNumberPattern = d.strings.new(f.bytes)
		case f.num == 6 && f.typ == wireBytes:
			pd.ExampleNumber = d.strings.new(f.bytes)
		case f.num == 9:
			return appendInt32s(&pd.PossibleLength, f)
		case f.num == 10:
			return appendInt32s(&pd.PossibleLengthLocalOnly, f)
		}
		return nil
	})
}

// appendInt32s appends the value of a repeated int32 field, packed or not, to *to.
func appendInt32s(to *[]int32, f wireField) error {
	if f.typ == wireVarint {
		*to = append(*to, int32(f.varint))
		return nil
	}
	for s := f.bytes; len(s) > 0; {
		v, n := consumeVarint(s)
		if n < 0 {
			return fmt.Errorf("%w: packed field %d", errWireFormat, f.num)
		}
		*to = append(*to, int32(v))
		s = s[n:]
	}
	return nil
}

func (d *wireDecoder) numberFormat(s string, nf *NumberFormat) error {
	err := fields(s, func(f wireField) error {
		if f.typ == wireVarint {
			if f.num == 6 {
				nf.NationalPrefixOptionalWhenFormatting = d.bools.new(f.varint != 0)
			}
			return nil
		}
		switch f.num {
		case 1:
			nf.Pattern = d.strings.new(f.bytes)
		case 2:
			nf.Format = d.strings.new(f.bytes)
		case 3:
			nf.LeadingDigitsPattern = append(nf.LeadingDigitsPattern, f.bytes)
		case 4:
			nf.NationalPrefixFormattingRule = d.strings.new(f.bytes)
		case 5:
			nf.DomesticCarrierCodeFormattingRule = d.strings.new(f.bytes)
		}
		return nil
	})
	if err == nil && (nf.Pattern == nil || nf.Format == nil) {
		err = fmt.Errorf("%w: NumberFormat without its pattern or format", errWireFormat)
	}
	return err
}
