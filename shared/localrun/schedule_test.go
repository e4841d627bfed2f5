package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/clock"
)

func TestScheduleFiresWithoutOverlap(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 987e6, time.UTC)
	var mu sync.Mutex
	var evs []events.EventBridgeEvent
	running, peak := 0, 0
	// Each run outlasts several periods, so overlapping or queued-up ticks would show.
	h := func(ctx context.Context, ev events.EventBridgeEvent) error {
		mu.Lock()
		running++
		peak = max(peak, running)
		evs = append(evs, ev)
		first := len(evs) == 1
		mu.Unlock()
		time.Sleep(35 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		if first {
			return errors.New("first run fails")
		}
		return nil
	}
	log, logs := testLogger()
	r := start(t, Config{Clock: clock.NewFake(now), Logger: log, Schedules: []Schedule{{Name: "poll-sources", Every: 10 * time.Millisecond, Handler: h}}})
	eventually(t, 5*time.Second, "three runs", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(evs) >= 3
	})
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if peak != 1 {
		t.Errorf("%d runs at once, want 1", peak)
	}
	ids := map[string]bool{}
	for _, ev := range evs {
		want := events.EventBridgeEvent{
			Version: "0", ID: ev.ID, DetailType: "Scheduled Event", Source: "aws.events", AccountID: "000000000000",
			Time: now.Truncate(time.Second), Region: "local", Resources: []string{"arn:aws:events:local:000000000000:rule/poll-sources"},
			Detail: json.RawMessage("{}"),
		}
		if !reflect.DeepEqual(ev, want) {
			t.Errorf("event\n got %+v\nwant %+v", ev, want)
		}
		if ids[ev.ID] || len(ev.ID) != 36 {
			t.Errorf("event id %q is malformed or repeated", ev.ID)
		}
		ids[ev.ID] = true
	}
	// A failed run is logged and the schedule keeps going.
	if !logs.contains("first run fails") {
		t.Errorf("log:\n%s", logs)
	}
}

func TestShutdownWaitsForScheduleRun(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	finished := false
	r := start(t, Config{Schedules: []Schedule{{Name: "s", Every: 5 * time.Millisecond, Handler: func(ctx context.Context, _ events.EventBridgeEvent) error {
		once.Do(func() { close(entered) })
		<-release
		finished = ctx.Err() == nil
		return nil
	}}}})
	<-entered
	r.cancel()
	time.Sleep(30 * time.Millisecond)
	close(release)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if !finished {
		t.Error("the run in progress did not finish with a live context")
	}
}
