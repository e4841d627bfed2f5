package main

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// directive is how a package runs gendecode.
const directive = "//go:generate go run ../jsonmodel/gendecode "

// TestGeneratedIsCurrent fails while a file gendecode writes is not what the generate
// directive of its package makes of the package now: run `go generate` in that package.
func TestGeneratedIsCurrent(t *testing.T) {
	found := 0
	err := filepath.WalkDir("../..", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(bytes.NewReader(src))
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), directive)
			if !ok {
				continue
			}
			found++
			checkCurrent(t, filepath.Dir(path), strings.Fields(line))
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	// The UltraCart payloads and the stored records.
	if found < 2 {
		t.Fatalf("found %d go:generate lines running gendecode under shared/, want at least 2", found)
	}
}

func checkCurrent(t *testing.T, dir string, args []string) {
	t.Helper()
	cfg, err := parseArgs(args)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	srcs := map[string][]byte{}
	for _, name := range cfg.in {
		if srcs[name], err = os.ReadFile(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	want, err := generate(cfg, srcs)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	got, err := os.ReadFile(filepath.Join(dir, cfg.out))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date: run go generate ./%s", filepath.Join(dir, cfg.out), strings.TrimPrefix(filepath.ToSlash(dir), "../../"))
	}
}

// TestGenerateRefusesWhatTheDecoderCannotRead: a field the decoder could not match or read as
// encoding/json does is an error, not a silently skipped field.
func TestGenerateRefusesWhatTheDecoderCannotRead(t *testing.T) {
	for _, src := range []string{
		"package p\ntype A struct { X Text `json:\"x\"`; Y Text `json:\"X\"` }",
		"package p\ntype A struct { X Text `json:\"\u00e9\"` }",
		"package p\ntype A struct { X Text `json:\"a\\\\b\"` }",
		"package p\ntype A struct { X Text }",
		"package p\ntype A struct { X Text `json:\",omitempty\"` }",
		"package p\ntype A struct { x Text `json:\"x\"` }",
		"package p\ntype A struct { X int64 `json:\"x,string\"` }",
		"package p\ntype A struct { X map[string]Text `json:\"x\"` }",
		"package p\ntype A struct { X float64 `json:\"x\"` }",
		"package p\ntype A struct { X []Other `json:\"x\"` }",
		"package p\ntype A struct { X [2]string `json:\"x\"` }",
		"package p\ntype B int32\ntype A struct { X B `json:\"x\"` }",
	} {
		cfg := config{in: []string{"a.go"}, out: "a_decode.go", decoder: "*jsonmodel.Decoder", read: map[string]string{"Text": "d.text"}}
		if _, err := generate(cfg, map[string][]byte{"a.go": []byte(src)}); err == nil {
			t.Errorf("%s: generated", src)
		}
	}
}

// TestGenerateFollowsTheRoots: with -types, only the named structs and the structs their fields
// hold are written; a named type of a basic type is read as that type.
func TestGenerateFollowsTheRoots(t *testing.T) {
	src := "package p\ntype S string\ntype A struct { B *B `json:\"b\"`; S S `json:\"s\"`; Skip int `json:\"-\"` }\n" +
		"type B struct { C []C `json:\"c\"` }\ntype C struct { N int64 `json:\"n\"` }\ntype Unused struct { N int64 `json:\"n\"` }"
	cfg := config{in: []string{"a.go"}, out: "a_decode.go", decoder: "*jsonmodel.Decoder", types: []string{"A"}}
	out, err := generate(cfg, map[string][]byte{"a.go": []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"func (v *A) field", "func (v *B) field", "func (v *C) field",
		"d.String((*string)(&v.S))", "jsonmodel.Structs(d, &v.C, (*C).field)"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("generated code lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"Unused", "skip"} {
		if bytes.Contains(out, []byte(unwanted)) {
			t.Errorf("generated code has %q:\n%s", unwanted, out)
		}
	}
}
