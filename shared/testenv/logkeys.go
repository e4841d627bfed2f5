package testenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// RepeatedKeys returns the keys that appear more than once in one object of a JSON log line
// ("stream" for {"stream":"orders",...,"stream":"orders"}), with the path of the object they
// are in. log/slog writes every attribute it is given, so a logger that was given a key by
// With and again at the call writes it twice; readers of JSON then keep one of the two at
// random. Go's encoding/json keeps the last silently, hence this token walk.
func RepeatedKeys(line []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var repeated []string
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key := k.(string)
				if seen[key] {
					repeated = append(repeated, strings.TrimPrefix(path+"."+key, "."))
				}
				seen[key] = true
				if err := walk(path + "." + key); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, fmt.Errorf("not a JSON line: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return repeated, errors.New("more than one JSON value on the line")
	}
	return repeated, nil
}

// SyncBuffer collects what many goroutines write (a server's log, say) and reads it back.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
