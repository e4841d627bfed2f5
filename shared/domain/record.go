package domain

import (
	"encoding/json"

	"github.com/cartrelay/cartrelay/shared/jsonmodel"
)

//go:generate go run ../jsonmodel/gendecode -in types.go -out types_decode.go -types Order,Subscription -read Money=d.Unmarshal

// UnmarshalRecord reads a stored order or subscription into *v, which must hold the zero
// value, exactly as encoding/json's Unmarshal would. Every ingest and every report rebuild
// reads a contact's whole history, so this is the hottest reader of stored data: it reads a
// record in one pass without reflection, through the field functions generated into
// types_decode.go, and gives every string a slice of one copy of data (a record kept keeps its
// text with it). What that reading does not read exactly as encoding/json does (see
// jsonmodel), encoding/json reads again, so results and errors stay encoding/json's own;
// FuzzUnmarshalRecordAsEncodingJSON checks that the two never differ.
func UnmarshalRecord[T Order | Subscription](data []byte, v *T) error {
	var err error
	switch p := any(v).(type) {
	case *Order:
		err = readRecord(data, p, (*Order).field)
	case *Subscription:
		err = readRecord(data, p, (*Subscription).field)
	}
	if err == nil {
		return nil
	}
	var zero T
	*v = zero
	return json.Unmarshal(data, v)
}

// readRecord is UnmarshalRecord's first reading.
func readRecord[T any](data []byte, v *T, field func(*T, *jsonmodel.Decoder) (int, error)) error {
	d := jsonmodel.StartBytes(data)
	return jsonmodel.Read(&d, v, field)
}
