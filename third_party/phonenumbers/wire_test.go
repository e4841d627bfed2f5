package phonenumbers

// cartrelay: the wire reader must decode exactly what proto.Unmarshal decodes into the
// protoc-gen-go messages (internal/pb, which only these tests link).

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/nyaruka/phonenumbers/internal/pb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func TestWireDecodesEmbeddedMetadataAsProtobuf(t *testing.T) {
	for name, data := range map[string][]byte{"territories": numberData, "short numbers": shortNumberData} {
		t.Run(name, func(t *testing.T) {
			raw, err := decodeUnzip(data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := unmarshalMetadataCollection(raw)
			if err != nil {
				t.Fatal(err)
			}
			want := &pb.PhoneMetadataCollection{}
			if err := proto.Unmarshal(raw, want); err != nil {
				t.Fatal(err)
			}
			if len(got.Metadata) < 200 {
				t.Errorf("%d regions decoded, want all of them", len(got.Metadata))
			}
			if diff := sameFields(reflect.ValueOf(got), reflect.ValueOf(want), "collection"); diff != "" {
				t.Error(diff)
			}
		})
	}
}

func TestWireAcceptsAndRejectsAsProtobuf(t *testing.T) {
	for _, tc := range wireCases() {
		t.Run(tc.name, func(t *testing.T) {
			checkWireAgainstProtobuf(t, tc.data)
			if _, err := unmarshalMetadataCollection(tc.data); (err != nil) != tc.invalid {
				t.Errorf("error %v, want one: %v", err, tc.invalid)
			}
		})
	}
}

func FuzzWire(f *testing.F) {
	for _, tc := range wireCases() {
		f.Add(tc.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkWireAgainstProtobuf(t, data)
	})
}

func checkWireAgainstProtobuf(t *testing.T, data []byte) {
	t.Helper()
	got, err := unmarshalMetadataCollection(data)
	want := &pb.PhoneMetadataCollection{}
	wantErr := proto.Unmarshal(data, want)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("wire reader: %v; proto.Unmarshal: %v (input %x)", err, wantErr, data)
	}
	if err != nil {
		return
	}
	if diff := sameFields(reflect.ValueOf(got), reflect.ValueOf(want), "collection"); diff != "" {
		t.Fatalf("%s (input %x)", diff, data)
	}
}

type wireCase struct {
	name    string
	data    []byte
	invalid bool // proto.Unmarshal fails
}

// wireCases are small collections as the metadata holds them and as it could but does not:
// unknown fields of every wire type, fields repeated, int32 arrays packed and not, and
// malformed input.
func wireCases() []wireCase {
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	str := func(b []byte, num protowire.Number, s string) []byte {
		return protowire.AppendString(tag(b, num, protowire.BytesType), s)
	}
	msg := func(b []byte, num protowire.Number, m []byte) []byte {
		return protowire.AppendBytes(tag(b, num, protowire.BytesType), m)
	}
	varint := func(b []byte, num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(tag(b, num, protowire.VarintType), v)
	}
	region := func(extra ...[]byte) []byte {
		var desc []byte
		desc = str(desc, 2, `[2-9]\d{9}`)
		desc = varint(desc, 9, 10)
		desc = msg(desc, 10, []byte{7, 8})
		desc = str(desc, 6, "2015550123")
		var format []byte
		format = str(format, 1, `(\d{3})(\d{3})(\d{4})`)
		format = str(format, 2, "($1) $2-$3")
		format = str(format, 3, "[2-9]")
		format = str(format, 3, "[2-9]1")
		format = varint(format, 6, 1)
		var m []byte
		m = msg(m, 1, desc)
		m = msg(m, 2, desc)
		m = str(m, 9, "US")
		m = varint(m, 10, 1)
		m = str(m, 11, "011")
		m = varint(m, 22, 1)
		m = msg(m, 19, format)
		m = msg(m, 20, format)
		for _, e := range extra {
			m = append(m, e...)
		}
		return msg(nil, 1, m)
	}
	var unknown []byte
	unknown = varint(unknown, 99, 1<<40)
	unknown = protowire.AppendFixed32(tag(unknown, 98, protowire.Fixed32Type), 7)
	unknown = protowire.AppendFixed64(tag(unknown, 97, protowire.Fixed64Type), 7)
	unknown = str(unknown, 96, "x")
	unknown = tag(unknown, 95, protowire.StartGroupType)
	unknown = varint(unknown, 1, 1)
	unknown = tag(unknown, 94, protowire.StartGroupType)
	unknown = tag(unknown, 94, protowire.EndGroupType)
	unknown = tag(unknown, 95, protowire.EndGroupType)

	cases := []wireCase{
		{"empty", nil, false},
		{"one region", region(), false},
		{"two regions", append(region(), region(str(nil, 9, "CA"))...), false},
		{"unknown fields", region(unknown), false},
		{"message field twice is merged", region(msg(nil, 1, str(nil, 6, "2125550123"))), false},
		{"scalar field twice, last wins", region(str(nil, 9, "GB"), varint(nil, 10, 44)), false},
		{"known field with another wire type", region(varint(nil, 9, 1), str(nil, 10, "x"), msg(nil, 1, varint(nil, 2, 5))), false},
		{"negative and oversized int32", region(varint(nil, 10, 1<<63), msg(nil, 1, varint(nil, 9, 1<<35))), false},
		{"region without its id", msg(nil, 1, varint(nil, 10, 1)), true},
		{"format without its pattern", region(msg(nil, 19, str(nil, 2, "$1"))), true},
		{"truncated", region()[:40], true},
		{"length past the end", region(tag(nil, 9, protowire.BytesType), []byte{50}), true},
		{"varint past ten bytes", region(tag(nil, 10, protowire.VarintType), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}), true},
		{"field number zero", []byte{0x02, 0x00}, true},
		{"end group without start", region(tag(nil, 5, protowire.EndGroupType)), true},
		{"group ended by another", region(tag(tag(nil, 5, protowire.StartGroupType), 6, protowire.EndGroupType)), true},
		{"reserved wire type", region([]byte{0x0e}), true},
		{"packed array with a bad varint", region(msg(nil, 1, msg(nil, 9, []byte{0x80}))), true},
	}
	for _, data := range [][]byte{numberData, shortNumberData} {
		raw, err := decodeUnzip(data)
		if err != nil {
			panic(err)
		}
		// The first region of each collection as it is embedded.
		_, _, n := protowire.ConsumeField(raw)
		cases = append(cases, wireCase{fmt.Sprintf("embedded %x", raw[:8]), raw[:n], false})
	}
	return cases
}

// sameFields reports how got, a value of this package's plain types, differs from want, the
// protoc-gen-go message, comparing the exported fields by name.
func sameFields(got, want reflect.Value, path string) string {
	if got.Kind() == reflect.Pointer {
		if got.IsNil() != want.IsNil() {
			return fmt.Sprintf("%s: nil %v, want nil %v", path, got.IsNil(), want.IsNil())
		}
		if got.IsNil() {
			return ""
		}
		return sameFields(got.Elem(), want.Elem(), path)
	}
	switch got.Kind() {
	case reflect.Struct:
		exported := 0
		for i := 0; i < want.NumField(); i++ {
			if want.Type().Field(i).IsExported() {
				exported++
			}
		}
		if got.NumField() != exported {
			return fmt.Sprintf("%s: %d fields, the generated message %d", path, got.NumField(), exported)
		}
		for i := 0; i < got.NumField(); i++ {
			name := got.Type().Field(i).Name
			w := want.FieldByName(name)
			if !w.IsValid() {
				return fmt.Sprintf("%s.%s: not in the generated message", path, name)
			}
			if diff := sameFields(got.Field(i), w, path+"."+name); diff != "" {
				return diff
			}
		}
		return ""
	case reflect.Slice:
		if got.Len() != want.Len() {
			return fmt.Sprintf("%s: %d elements, want %d", path, got.Len(), want.Len())
		}
		for i := 0; i < got.Len(); i++ {
			if diff := sameFields(got.Index(i), want.Index(i), fmt.Sprintf("%s[%d]", path, i)); diff != "" {
				return diff
			}
		}
		return ""
	default:
		if got.Interface() != want.Interface() {
			return fmt.Sprintf("%s: %v, want %v", path, got.Interface(), want.Interface())
		}
		return ""
	}
}

// BenchmarkDecodeMetadata is the first phone number's cost of reading the territory
// metadata, by the wire reader and by proto.Unmarshal as before.
func BenchmarkDecodeMetadata(b *testing.B) {
	raw, err := decodeUnzip(numberData)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := unmarshalMetadataCollection(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("protobuf", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := proto.Unmarshal(raw, &pb.PhoneMetadataCollection{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
