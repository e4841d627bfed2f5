package loadgen

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
	"github.com/cartrelay/cartrelay/shared/opcount"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	storeembedded "github.com/cartrelay/cartrelay/shared/store/embedded"
)

// Destination modes of a run.
const (
	// DryRun leaves the account without API keys: the forwarders record what they would send.
	DryRun = "dry"
	// Fakes points the account at in-process stand-ins for ONTRAPORT and Iterable, with their
	// rate limits lifted so that what is measured is cartrelay's own work.
	Fakes = "fake"
)

// Options describe one load run.
type Options struct {
	// Binary is the cartrelay executable to run serve from.
	Binary string
	// Data is serve's data directory; "" makes a temporary one, removed afterwards.
	Data string
	// Rate, Workers and Duration: see Load.
	Rate     int
	Workers  int
	Duration time.Duration
	// Destinations is DryRun or Fakes.
	Destinations string
	// SampleEvery follows one accepted order in so many to ingest and delivery (default 10).
	SampleEvery int
	// Drain bounds the wait, after the last delivery, for the followed orders to be delivered
	// (default 2 minutes).
	Drain time.Duration
	// ServeArgs are added to serve's command line (--cpuprofile FILE, for instance).
	ServeArgs []string
	// Progress receives a line now and then; nil for none.
	Progress io.Writer
}

// Report is what a run measured.
type Report struct {
	Rate         int    `json:"rate"`
	Workers      int    `json:"workers,omitempty"`
	Seconds      int    `json:"seconds"`
	Destinations string `json:"destinations"`

	Sent     int         `json:"sent"`
	Accepted int         `json:"accepted"`
	Codes    map[int]int `json:"codes"`
	Failures int         `json:"no_answer"`
	// AcceptedPerSecond is the accepted deliveries over the time from the first request to the
	// last answer.
	AcceptedPerSecond float64 `json:"accepted_per_second"`
	Answer            Spread  `json:"answer"`

	// Followed orders, from the webhook's 200: until ingest stored the order (the time ingest
	// wrote into the transaction that stores it) and until the later of the two destinations
	// answered its delivery (the delivery log's start plus latency). Both are serve's own
	// records, so they do not depend on when the follower looked.
	Followed  int    `json:"followed"`
	Ingested  Spread `json:"ingested"`
	Delivered Spread `json:"delivered"`
	// DeliveredAll is how many of the followed orders both destinations had before the drain
	// ended.
	DeliveredAll int `json:"followed_delivered"`
	// Stored is how many of the accepted orders were in the table at the end.
	Stored int `json:"stored"`

	PeakRSS  int64         `json:"peak_rss_bytes"`
	ServeCPU time.Duration `json:"serve_cpu_ns"`
	// Counts are serve's totals of what it did to its database (shared/opcount), read from
	// its log once it stopped.
	Counts map[string]int64 `json:"counts,omitempty"`
}

// Spread summarises durations.
type Spread struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func spread(ds []time.Duration) Spread {
	if len(ds) == 0 {
		return Spread{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return Spread{N: len(s), P50: at(0.50), P99: at(0.99), Max: s[len(s)-1]}
}

func (s Spread) String() string {
	if s.N == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %s, p99 %s, max %s", round(s.P50), round(s.P99), round(s.Max))
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

// Text is the report for a person.
func (r Report) Text() string {
	var b strings.Builder
	rate := strconv.Itoa(r.Rate) + "/s"
	if r.Rate == 0 {
		rate = fmt.Sprintf("as fast as %d senders go", r.Workers)
	}
	fmt.Fprintf(&b, "load: %s for %d s, destinations %s\n", rate, r.Seconds, r.Destinations)
	fmt.Fprintf(&b, "  sent %d, accepted %d (%.0f/s), answers %v, no answer %d\n", r.Sent, r.Accepted, r.AcceptedPerSecond, r.Codes, r.Failures)
	fmt.Fprintf(&b, "  answer time: %s\n", r.Answer)
	fmt.Fprintf(&b, "  accept to ingested (%d followed): %s\n", r.Followed, r.Ingested)
	fmt.Fprintf(&b, "  accept to delivered to both destinations: %s (%d of %d followed)\n", r.Delivered, r.DeliveredAll, r.Followed)
	fmt.Fprintf(&b, "  accepted orders stored at the end: %d of %d\n", r.Stored, r.Accepted)
	fmt.Fprintf(&b, "  serve: peak RSS %.0f MiB, CPU %.1f s\n", float64(r.PeakRSS)/(1<<20), r.ServeCPU.Seconds())
	if r.Stored > 0 {
		fmt.Fprintf(&b, "  per stored order: CPU %.2f ms", r.ServeCPU.Seconds()*1000/float64(r.Stored))
		for _, line := range perOrder(r.Counts, r.Stored) {
			fmt.Fprintf(&b, "\n    %s", line)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Run starts serve, posts the load, follows a sample of the orders to ingest and delivery,
// checks that every accepted order was stored, and stops serve.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.SampleEvery <= 0 {
		o.SampleEvery = 10
	}
	if o.Drain <= 0 {
		o.Drain = 2 * time.Minute
	}
	if o.Destinations == "" {
		o.Destinations = DryRun
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	rep := Report{Rate: o.Rate, Seconds: int(o.Duration / time.Second), Destinations: o.Destinations, Codes: map[int]int{}}
	if o.Rate == 0 {
		rep.Workers = max(o.Workers, 32)
		if o.Workers > 0 {
			rep.Workers = o.Workers
		}
	}
	if o.Data == "" {
		dir, err := os.MkdirTemp("", "cartrelay-load-")
		if err != nil {
			return rep, err
		}
		defer os.RemoveAll(dir)
		o.Data = dir
	}
	acct, closeFakes, err := account(o.Destinations)
	if err != nil {
		return rep, err
	}
	defer closeFakes()
	if err := PutAccount(ctx, o.Binary, o.Data, acct); err != nil {
		return rep, err
	}
	srv, err := StartServe(ctx, ServeOptions{Binary: o.Binary, Data: o.Data, Args: append([]string{"--no-throttle"}, o.ServeArgs...)})
	if err != nil {
		return rep, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.Kill()
		}
	}()

	db, err := sqlitedb.InDir(ctx, o.Data)
	if err != nil {
		return rep, err
	}
	defer db.Close()
	st, err := storeembedded.New(ctx, db, clock.System{})
	if err != nil {
		return rep, err
	}
	repo := history.New(st)
	// The destinations the load account enables (account below).
	f := &follower{recs: repoRecords{repo}, dests: []string{ontraport.Registration().Name, iterable.Registration().Name}, every: 10 * time.Millisecond}
	fctx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	followed := make(chan struct{})
	go func() { defer close(followed); f.run(fctx) }()

	run := strconv.FormatInt(time.Now().Unix()%1_000_000, 36)
	var took []time.Duration
	var accepted []uint64
	var first, last time.Time
	fmt.Fprintf(progress, "posting for %s to serve at %s (pid %d, log %s)\n", o.Duration, srv.Addr, srv.PID(), srv.LogPath)
	Post(Load{URL: "http://" + srv.Addr, Run: run, Rate: o.Rate, Workers: o.Workers, Duration: o.Duration}, ctx.Done(), func(a Answer) {
		rep.Sent++
		if first.IsZero() || a.Sent.Before(first) {
			first = a.Sent
		}
		if end := a.Sent.Add(a.Took); end.After(last) {
			last = end
		}
		if a.Code == 0 {
			rep.Failures++
			return
		}
		rep.Codes[a.Code]++
		if !a.Accepted() {
			return
		}
		took = append(took, a.Took)
		accepted = append(accepted, a.N)
		if a.N%uint64(o.SampleEvery) == 0 {
			id, email := OrderID(run, a.N), Email(run, a.N)
			f.add(a.N, id, email, ContentHash(Delivery(id, email, a.Placed)), a.Sent.Add(a.Took))
		}
	})
	rep.Accepted = len(accepted)
	if span := last.Sub(first); span > 0 {
		rep.AcceptedPerSecond = float64(rep.Accepted) / span.Seconds()
	}
	rep.Answer = spread(took)
	fmt.Fprintf(progress, "posted: %d sent, %d accepted; waiting for the followed orders to be delivered\n", rep.Sent, rep.Accepted)

	drainEnd := time.Now().Add(o.Drain)
	for time.Now().Before(drainEnd) && ctx.Err() == nil {
		all, done := f.counts()
		if done == all {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopFollowing()
	<-followed
	// One last look at every followed order, unbounded: the times come from serve's records,
	// so an order the rounds had not got to yet still counts with its real lag.
	f.look(ctx, 0)
	ingest, deliver := f.lags()
	rep.Followed, rep.DeliveredAll = f.counts()
	rep.Ingested, rep.Delivered = spread(ingest), spread(deliver)

	for _, n := range accepted {
		if email, err := repo.FindOrder(ctx, Account, OrderKey(OrderID(run, n))); err == nil && email != "" {
			rep.Stored++
		}
	}
	// The ingest marker commits with the order, so a stored order without one means the
	// follower looks markers up under another hash than ingest files them: its lags would
	// leave out every order.
	unmarked := f.unmarked(ctx, func(key string) bool {
		email, err := repo.FindOrder(ctx, Account, key)
		return err == nil && email != ""
	})
	ps, err := srv.Stats()
	if err != nil {
		return rep, err
	}
	rep.PeakRSS, rep.ServeCPU = ps.PeakRSS, ps.CPU
	stopped = true
	if err := srv.Stop(30 * time.Second); err != nil {
		return rep, fmt.Errorf("stop serve: %w", err)
	}
	rep.Counts, err = ServeCounts(srv.LogPath)
	if err == nil && unmarked > 0 {
		err = fmt.Errorf("%d followed orders are stored but have no ingest marker under the hash looked up (loadgen.ContentHash): their lags are left out; make ContentHash split a delivery as the webhook does", unmarked)
	}
	return rep, err
}

// ServeCounts reads the totals serve logged when it stopped (the last such line of its log).
func ServeCounts(logPath string) (map[string]int64, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var counts map[string]int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), []byte(`"msg":"`+opcount.LogMessage+`"`)) {
			continue
		}
		var l struct{ Counts map[string]int64 }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("read serve's totals in %s: %w", logPath, err)
		}
		counts = l.Counts
	}
	return counts, sc.Err()
}

// perOrder words counts per order, grouped: commits, table reads and writes (the writes by
// kind of item, most first), and each queue's sends, receives and deletes.
func perOrder(counts map[string]int64, orders int) []string {
	if len(counts) == 0 {
		return nil
	}
	per := func(n int64) string { return strconv.FormatFloat(float64(n)/float64(orders), 'f', 2, 64) }
	lines := []string{fmt.Sprintf("database: %s writes in %s commits (WAL restarted %d times)",
		per(counts["db.writes"]), per(counts["db.commits"]), counts["db.wal_restarts"])}
	lines = append(lines, fmt.Sprintf("table: %s gets, %s reads of many (%s keys), %s queries, %s items written", per(counts["store.get"]),
		per(counts["store.get_many"]), per(counts["store.get_many.keys"]), per(counts["store.query"]), per(counts["store.write"])))
	type kind struct {
		name string
		n    int64
	}
	var kinds, gets, many []kind
	queues := map[string]bool{}
	for k, n := range counts {
		if name, ok := strings.CutPrefix(k, "store.write."); ok {
			kinds = append(kinds, kind{name, n})
		}
		if name, ok := strings.CutPrefix(k, "store.get."); ok {
			gets = append(gets, kind{name, n})
		}
		if name, ok := strings.CutPrefix(k, "store.get_many."); ok && name != "keys" {
			many = append(many, kind{name, n})
		}
		if strings.HasPrefix(k, "queue.") {
			queues[k[strings.LastIndexByte(k, '.')+1:]] = true
		}
	}
	byKind := func(what string, ks []kind) {
		slices.SortFunc(ks, func(a, b kind) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.name, b.name)) })
		var out []string
		for _, k := range ks {
			out = append(out, k.name+" "+per(k.n))
		}
		if len(out) > 0 {
			lines = append(lines, what+" by kind: "+strings.Join(out, ", "))
		}
	}
	byKind("items written", kinds)
	byKind("gets", gets)
	byKind("keys read many at once", many)
	for _, q := range slices.Sorted(maps.Keys(queues)) {
		c := func(what string) string { return per(counts["queue."+what+"."+q]) }
		lines = append(lines, fmt.Sprintf("queue %s: %s sent, %s receives (%s looks), %s received, %s deletes, %s batch deletes",
			q, c("sent"), c("receive"), c("look"), c("received"), c("deleted"), c("delete_batch")))
	}
	return lines
}

// account is the account file for a run, and for Fakes the stand-ins it points at.
func account(dests string) (map[string]any, func(), error) {
	a := map[string]any{
		// Every order counts as new: the default (the account's creation) would make the
		// orders of the first second historical, since UltraCart's times are whole seconds.
		"forward_since": "2020-01-01T00:00:00Z",
		"ultracart":     map[string]any{"webhook_username": WebhookUser, "webhook_password": WebhookPassword},
		"ontraport":     map[string]any{"enabled": true},
		"iterable":      map[string]any{"enabled": true},
	}
	switch dests {
	case DryRun:
		return a, func() {}, nil
	case Fakes:
	default:
		return nil, nil, fmt.Errorf("destinations %q: want %s or %s", dests, DryRun, Fakes)
	}
	const opKey, itKey = "load-ontraport-key-0123", "load-iterable-key-0123456789abcdef"
	op := ontraportfake.New(ontraportfake.Options{AppID: "2_load", APIKey: opKey, Limit: 1 << 30})
	it, err := iterablefake.New(iterablefake.Options{APIKey: itKey, Limits: map[string]iterablefake.Limit{}})
	if err != nil {
		op.Close()
		return nil, nil, err
	}
	a["ontraport"] = map[string]any{"enabled": true, "app_id": "2_load", "api_key": opKey, "base_url": op.URL,
		"requests_per_minute": "1000000"}
	a["iterable"] = map[string]any{"enabled": true, "api_key": itKey, "base_url": it.URL}
	return a, func() { op.Close(); it.Close() }, nil
}

// PutAccount creates the load account with `cartrelay accounts put`.
func PutAccount(ctx context.Context, binary, data string, acct map[string]any) error {
	body, err := json.Marshal(acct)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, binary, "--data", data, "accounts", "put", Account, "--file", "-")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cartrelay accounts put: %w\n%s", err, out)
	}
	return nil
}
