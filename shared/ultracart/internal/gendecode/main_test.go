package main

import (
	"bytes"
	"os"
	"testing"
)

// TestGeneratedIsCurrent fails while model_decode.go is not what model.go generates: run
// `go generate ./shared/ultracart`.
func TestGeneratedIsCurrent(t *testing.T) {
	src, err := os.ReadFile("../../model.go")
	if err != nil {
		t.Fatal(err)
	}
	want, err := generate(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../model_decode.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("shared/ultracart/model_decode.go is out of date: run go generate ./shared/ultracart")
	}
}

// TestGenerateRefusesWhatTheDecoderCannotRead: a field the model decoder could not match or
// read is an error, not a silently skipped field.
func TestGenerateRefusesWhatTheDecoderCannotRead(t *testing.T) {
	for _, src := range []string{
		"package p\ntype A struct { X Text `json:\"x\"`; Y Text `json:\"X\"` }",
		"package p\ntype A struct { X Text `json:\"\u00e9\"` }",
		"package p\ntype A struct { X Text }",
		"package p\ntype A struct { X map[string]Text `json:\"x\"` }",
		"package p\ntype A struct { X string `json:\"x\"` }",
	} {
		if _, err := generate([]byte(src)); err == nil {
			t.Errorf("%s: generated", src)
		}
	}
}
