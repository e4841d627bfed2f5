package accounts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Table keys of account items.
const (
	pkPrefix   = "A#"
	skAccount  = "ACCOUNT"
	gsiListing = "ACCOUNTS"
)

// putAttempts bounds Put's optimistic retries. Each failed attempt means another writer
// succeeded, so this many only runs out under a stampede of concurrent writers.
const putAttempts = 50

// MaxFileSize caps an account file; a real one is a few hundred bytes.
const MaxFileSize = 64 << 10

// Repo reads and writes accounts.
type Repo struct {
	store  store.Store
	sealer *secrets.Sealer
	clk    clock.Clock
	check  func(Account) error
	// sections are the groups of the account file other packages own (WithSections).
	sections []Section
	// decoded keeps what Get decoded, for reads of the same stored item.
	decoded *decoded
}

// NewRepo returns a repository over s that seals secrets with sealer.
func NewRepo(s store.Store, sealer *secrets.Sealer, clk clock.Clock) *Repo {
	return &Repo{store: s, sealer: sealer, clk: clk, decoded: newDecoded()}
}

// WithCheck makes Put refuse an account that check rejects, in addition to the field table's
// own checks. Destinations own the meaning of their settings (durations, list ids, limits), so
// they check them here and a bad value is refused at `accounts put` rather than at delivery.
// check should join one error per bad setting; each becomes one problem of the InvalidError.
func (r *Repo) WithCheck(check func(Account) error) *Repo {
	r.check = check
	return r
}

// WithSections adds to the account file the sections other packages own (each destination's,
// from its registration). A repository without a section treats its keys in a stored account as
// unknown: it keeps them, and refuses them in a patch.
func (r *Repo) WithSections(sections ...Section) *Repo {
	r.sections = append(r.sections, sections...)
	// Accounts decoded without these sections would read their keys as unknown.
	r.decoded = newDecoded()
	return r
}

// fields are the account file's keys: accounts' own, then the sections' with the entries that
// any of docs names.
func (r *Repo) fields(docs ...map[string]any) []field {
	return append(fieldTable(), sectionFields(r.sections, docs...)...)
}

// SecretNames lists what Get may open: SecretFields, then the sections' secrets (an entry's
// as its pattern, "webhooks.endpoints.*.secret").
func (r *Repo) SecretNames() []Field {
	return append(SecretFields(), secretPatterns(r.sections)...)
}

// Key is the table key of account id.
func Key(id string) store.Key { return store.Key{PK: pkPrefix + id, SK: skAccount} }

// Get returns the account with the secrets named in open decrypted, and only those: every
// other stored secret is known to be set (IsSet) but stays sealed, so a process holds in
// plaintext only what its work needs, and in AWS its function's IAM policy lets it decrypt no
// more (see the package comment). An unknown or invalid id gives an error matching
// ErrNotFound; a named secret that does not decrypt gives a *secrets.OpenError naming it.
func (r *Repo) Get(ctx context.Context, id string, open ...Field) (Account, error) {
	if err := ValidateID(id); err != nil {
		return Account{}, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	want, err := r.secretSet(open)
	if err != nil {
		return Account{}, err
	}
	it, err := r.store.Get(ctx, pkPrefix+id, skAccount)
	if errors.Is(err, store.ErrNotFound) {
		return Account{}, fmt.Errorf("account %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("read account %s: %w", id, err)
	}
	k := keyOf(id, want)
	if a, opened, ok := r.decoded.get(k, it.Version, it.Data); ok {
		// Opening a secret adds it to what the process scrubs from its records, which
		// forgets the oldest values past its bound; a read of the kept account does the same.
		if r.sealer != nil {
			r.sealer.Known().Add(opened...)
		}
		return a, nil
	}
	a, _, err := r.decode(ctx, id, it, want)
	if err != nil {
		return Account{}, err
	}
	r.decoded.put(k, it.Version, it.Data, a)
	return a, nil
}

// secretSet checks that every name is a secret of the account file.
func (r *Repo) secretSet(open []Field) (map[string]bool, error) {
	want := map[string]bool{}
	known := r.SecretNames()
	for _, f := range open {
		if !slices.Contains(known, f) {
			return nil, fmt.Errorf("accounts: %q is not a secret of the account file (the secrets are %v)", f, known)
		}
		want[string(f)] = true
	}
	return want, nil
}

// IDs lists every account id in order, without decrypting anything.
func (r *Repo) IDs(ctx context.Context) ([]string, error) {
	items, err := store.QueryAll(ctx, r.store, store.Query{Index: store.GSI1, PK: gsiListing})
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, strings.TrimPrefix(it.PK, pkPrefix))
	}
	return ids, nil
}

// List returns every account, ordered by id, with no secret opened.
func (r *Repo) List(ctx context.Context) ([]Account, error) {
	items, err := store.QueryAll(ctx, r.store, store.Query{Index: store.GSI1, PK: gsiListing})
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	out := make([]Account, 0, len(items))
	for _, it := range items {
		a, _, err := r.decode(ctx, strings.TrimPrefix(it.PK, pkPrefix), it, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Put merges patch, an account file (RFC 7386 JSON merge patch over the nested form), into
// account id, creating the account if it does not exist, and returns the result.
//
// Absent keys keep their value and null resets a key, or a whole group, to its default.
// Secrets are given in plaintext and sealed before they are stored. Every problem in the file
// is reported at once as an *InvalidError, and then nothing is written.
//
// The write is conditional on the version read, and retried on a concurrent change, so two
// puts to different keys of one account both take effect.
//
// Put does not create an account in the connected stores' id space (StorePrefix): that is
// PutForStore's, for the connect flow. It updates one that exists.
func (r *Repo) Put(ctx context.Context, id string, patch []byte) (Account, error) {
	return r.put(ctx, id, patch, putOptions{})
}

// Preview is the account as Put would leave it, checked as Put checks it, without writing
// anything: the console asks the vendors about the keys a post gives before it saves. A secret
// the patch gives is opened, one it leaves stays as stored (sealed), one it removes is unset.
func (r *Repo) Preview(ctx context.Context, id string, patch []byte) (Account, error) {
	return r.put(ctx, id, patch, putOptions{preview: true})
}

// putOptions say what kind of put this is.
type putOptions struct {
	// forStore may create an account in the connected stores' id space (PutForStore).
	forStore bool
	// preview stops before sealing and writing (Preview).
	preview bool
}

// PutForStore is Put that may create an account whose id has StorePrefix: the connect flow's,
// once the store is bound to that id.
func (r *Repo) PutForStore(ctx context.Context, id string, patch []byte) (Account, error) {
	return r.put(ctx, id, patch, putOptions{forStore: true})
}

func (r *Repo) put(ctx context.Context, id string, patch []byte, opt putOptions) (Account, error) {
	if err := ValidateID(id); err != nil {
		return Account{}, err
	}
	doc, err := decodePatch(patch)
	if err != nil {
		return Account{}, &InvalidError{ID: id, Problems: []Problem{{Message: err.Error()}}}
	}
	seals := sealMemo{}
	for range putAttempts {
		a, err := r.putOnce(ctx, id, doc, seals, opt)
		if errors.Is(err, store.ErrConditionFailed) {
			continue
		}
		return a, err
	}
	return Account{}, fmt.Errorf("account %s: %w (%d attempts)", id, ErrConflict, putAttempts)
}

// sealMemo keeps the values sealed for a patch across Put's retries, so a retry does not
// call KMS again. It is keyed by path and plaintext.
type sealMemo map[[2]string]string

func (r *Repo) putOnce(ctx context.Context, id string, patch map[string]any, seals sealMemo, opt putOptions) (Account, error) {
	now := r.clk.Now()
	it, err := r.store.Get(ctx, pkPrefix+id, skAccount)
	exists := err == nil
	switch {
	case errors.Is(err, store.ErrNotFound):
		it = store.Item{}
	case err != nil:
		return Account{}, fmt.Errorf("read account %s: %w", id, err)
	}

	var (
		a      Account
		stored map[string]any
	)
	if exists {
		// Nothing is opened: a secret the patch leaves alone stays as sealed, so a put needs
		// no decrypt permission and works even when a stored secret no longer opens.
		a, stored, err = r.decode(ctx, id, it, nil)
		if err != nil {
			return Account{}, err
		}
	} else {
		if IsStoreID(id) && !opt.forStore && !opt.preview {
			return Account{}, &ReservedIDError{ID: id}
		}
		a = Account{ID: id, CreatedAt: now}
		for _, f := range r.fields() {
			f.reset(&a)
		}
		stored = map[string]any{}
	}

	fields := r.fields(stored, patch)
	res := patchResult{touched: map[string]bool{}}
	if problems := checkEntryNames(r.sections, patch); len(problems) > 0 {
		res.problems = problems
	} else {
		for _, f := range fields {
			if _, ok := a.Settings[f.path]; f.ref == nil && !ok {
				f.reset(&a) // an entry the patch adds
			}
		}
		res = applyPatch(&a, id, patch, func(path string) bool {
			_, ok := Lookup(stored, path)
			return ok
		}, fields)
	}
	// An entry left with only defaults is gone, as a null in the patch means, before anyone
	// checks the account.
	pruneEntries(&a, fields)
	if len(res.problems) == 0 && r.check != nil {
		if err := r.check(a); err != nil {
			res.problems = append(res.problems, checkProblems(err)...)
		}
	}
	if len(res.problems) > 0 {
		return Account{}, &InvalidError{ID: id, Problems: res.problems}
	}
	if opt.preview {
		return a, nil
	}
	if !exists {
		// The cutover is fixed at creation even when left at its default, so that it never
		// moves afterwards.
		res.touched["forward_since"] = true
	}

	for _, f := range fields {
		if !res.touched[f.path] {
			continue
		}
		if f.isDefault(&a) && f.kind != kindTime {
			// Defaults are not stored, so a default changed in a later release applies.
			deletePath(stored, f.path)
			continue
		}
		v, err := r.storedValue(ctx, id, f, &a, seals)
		if err != nil {
			return Account{}, err
		}
		setPath(stored, f.path, v)
	}
	a.UpdatedAt = now
	stored[keyCreatedAt] = formatTime(a.CreatedAt)
	stored[keyUpdatedAt] = formatTime(a.UpdatedAt)
	data, err := json.Marshal(stored)
	if err != nil {
		return Account{}, fmt.Errorf("encode account %s: %w", id, err)
	}

	next := store.Item{
		PK: pkPrefix + id, SK: skAccount,
		GSI1PK: gsiListing, GSI1SK: id,
		Version: it.Version + 1,
		Data:    data,
	}
	w := store.PutItem(next, store.NotExists)
	if exists {
		w = store.PutIfVersion(next, it.Version)
	}
	if err := r.store.Write(ctx, w); err != nil {
		if errors.Is(err, store.ErrConditionFailed) {
			return Account{}, err
		}
		return Account{}, fmt.Errorf("write account %s: %w", id, err)
	}
	a.Version = next.Version
	return a, nil
}

// purpose is what a secret of an account is sealed for.
func purpose(id, path string) secrets.Purpose { return secrets.Purpose{Account: id, Secret: path} }

// storedValue is how a setting is kept in the document.
func (r *Repo) storedValue(ctx context.Context, id string, f field, a *Account, seals sealMemo) (any, error) {
	switch v := f.get(a).(type) {
	case time.Time:
		return formatTime(v), nil
	case HistoryMode:
		return string(v), nil
	case Secret:
		memo := [2]string{f.path, v.Reveal()}
		if s, ok := seals[memo]; ok {
			return s, nil
		}
		s, err := r.sealer.Seal(ctx, []byte(v.Reveal()), purpose(id, f.name()))
		if err != nil {
			return nil, fmt.Errorf("encrypt %s of account %s: %w", f.path, id, err)
		}
		seals[memo] = s
		return s, nil
	default:
		return v, nil
	}
}

// decode reads an account item, opening the secrets in open; the others stay sealed. The
// returned document is the stored one, so that Put keeps keys a newer release wrote and the
// sealed values it does not change.
func (r *Repo) decode(ctx context.Context, id string, it store.Item, open map[string]bool) (Account, map[string]any, error) {
	var doc map[string]any
	if err := json.Unmarshal(it.Data, &doc); err != nil {
		return Account{}, nil, fmt.Errorf("account %s: the stored document is not JSON: %w", id, err)
	}
	if doc == nil {
		return Account{}, nil, fmt.Errorf("account %s: the stored document is not a JSON object", id)
	}
	a := Account{ID: id, Version: it.Version}
	var err error
	if a.CreatedAt, err = storedTime(doc, keyCreatedAt); err != nil {
		return Account{}, nil, fmt.Errorf("account %s: stored %w", id, err)
	}
	if a.UpdatedAt, err = storedTime(doc, keyUpdatedAt); err != nil {
		return Account{}, nil, fmt.Errorf("account %s: stored %w", id, err)
	}
	for _, f := range r.fields(doc) {
		raw, ok := Lookup(doc, f.path)
		if !ok || raw == nil {
			f.reset(&a)
			continue
		}
		if f.kind == kindSecret {
			sealed, isStr := raw.(string)
			if !isStr {
				return Account{}, nil, fmt.Errorf("account %s: stored %s is not a sealed string", id, f.path)
			}
			what := f.path + " of account " + id
			if !open[f.name()] {
				f.set(&a, sealedSecret(what))
				continue
			}
			plain, err := r.sealer.Open(ctx, sealed, purpose(id, f.name()))
			if err != nil {
				var oe *secrets.OpenError
				if errors.As(err, &oe) {
					err = &secrets.OpenError{What: what, Err: oe.Err}
				}
				return Account{}, nil, err
			}
			f.set(&a, NewSecret(string(plain)))
			continue
		}
		v, msg := f.parse(raw)
		if msg != "" {
			return Account{}, nil, fmt.Errorf("account %s: stored %s", id, msg)
		}
		f.set(&a, v)
	}
	return a, doc, nil
}

func storedTime(doc map[string]any, key string) (time.Time, error) {
	s, _ := doc[key].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time", key, s)
	}
	return t.UTC(), nil
}

// decodePatch parses an account file. Numbers stay json.Number so messages repeat them as
// written.
func decodePatch(patch []byte) (map[string]any, error) {
	if len(patch) > MaxFileSize {
		return nil, fmt.Errorf("the account file has %d bytes; the limit is %d", len(patch), MaxFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(patch))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the account file is empty; give a JSON object such as {} to create an account with defaults")
		}
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			line, col := position(patch, syn.Offset)
			return nil, fmt.Errorf("the account file is not valid JSON: line %d, column %d: %w", line, col, err)
		}
		return nil, fmt.Errorf("the account file is not valid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("the account file has more than one JSON value; give a single object")
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the account file must be a JSON object, got %s", show(v))
	}
	return doc, nil
}

// position turns a byte offset into a 1-based line and column for people editing the file.
func position(b []byte, offset int64) (line, col int) {
	if offset > int64(len(b)) {
		offset = int64(len(b))
	}
	before := b[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, max(col, 1)
}

// checkProblems turns a (joined) error of a settings check into problems, one per error.
func checkProblems(err error) []Problem {
	var out []Problem
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, checkProblems(e)...)
		}
		return out
	}
	return []Problem{{Message: err.Error()}}
}

// Reseal seals again, in the current format, every secret of account id that an earlier
// release sealed (secrets.Current), and returns their keys. The values do not change; what
// changes is the encryption context they are sealed under, which the functions' IAM policies
// name secret by secret. It opens only those secrets, under the version check.
func (r *Repo) Reseal(ctx context.Context, id string) ([]string, error) {
	if err := ValidateID(id); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	for range putAttempts {
		done, err := r.resealOnce(ctx, id)
		if errors.Is(err, store.ErrConditionFailed) {
			continue
		}
		return done, err
	}
	return nil, fmt.Errorf("account %s: %w (%d attempts)", id, ErrConflict, putAttempts)
}

func (r *Repo) resealOnce(ctx context.Context, id string) ([]string, error) {
	it, err := r.store.Get(ctx, pkPrefix+id, skAccount)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("account %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read account %s: %w", id, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(it.Data, &doc); err != nil || doc == nil {
		return nil, fmt.Errorf("account %s: the stored document is not a JSON object", id)
	}
	var done []string
	for _, f := range r.fields(doc) {
		if f.kind != kindSecret {
			continue
		}
		sealed, _ := Lookup(doc, f.path)
		s, ok := sealed.(string)
		if !ok || secrets.Current(s) {
			continue
		}
		p := purpose(id, f.name())
		plain, err := r.sealer.Open(ctx, s, p)
		if err != nil {
			return nil, fmt.Errorf("%s of account %s: %w", f.path, id, err)
		}
		again, err := r.sealer.Seal(ctx, plain, p)
		if err != nil {
			return nil, fmt.Errorf("%s of account %s: %w", f.path, id, err)
		}
		setPath(doc, f.path, again)
		done = append(done, f.path)
	}
	if len(done) == 0 {
		return nil, nil
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode account %s: %w", id, err)
	}
	// The version moves, so a put that read the old values writes on top of these, not
	// under; updated_at stays, as no setting changed.
	next := it
	next.Data, next.Version = data, it.Version+1
	if err := r.store.Write(ctx, store.PutIfVersion(next, it.Version)); err != nil {
		if errors.Is(err, store.ErrConditionFailed) {
			return nil, err
		}
		return nil, fmt.Errorf("write account %s: %w", id, err)
	}
	return done, nil
}

// pruneEntries removes from a the entries of sections whose every key has its default.
func pruneEntries(a *Account, fields []field) {
	entry := func(f field) string { return f.path[:strings.LastIndexByte(f.path, '.')] }
	used := map[string]bool{}
	for _, f := range fields {
		if f.ref == nil && f.pattern != f.path {
			used[entry(f)] = used[entry(f)] || !f.isDefault(a)
		}
	}
	for _, f := range fields {
		if f.ref == nil && f.pattern != f.path && !used[entry(f)] {
			delete(a.Settings, f.path)
		}
	}
}
