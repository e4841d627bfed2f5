package app

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcpoll"
)

// pollJob is a poll-queue message. Source is the registered source (shared/sources) whose
// poller runs it; a job without one is UltraCart's, as every job was before ThriveCart was
// polled.
type pollJob struct {
	Account string `json:"account"`
	Source  string `json:"source,omitempty"`
	Stream  string `json:"stream"`
}

func pollMessage(j pollJob) queue.Message {
	body, _ := json.Marshal(j)
	source := j.Source
	if source == "" {
		source = string(domain.UltraCart)
	}
	return queue.Message{Body: string(body), Attributes: map[string]string{"account": j.Account, "source": source}}
}

// ThriveCartPollRun is RunPoll for account's ThriveCart transactions, with ThriveCart's own
// result.
func (a *App) ThriveCartPollRun(ctx context.Context, account string, deadline time.Time) (tcpoll.Result, error) {
	res, err := a.RunPoll(ctx, string(domain.ThriveCart), source.Job{Account: account, Stream: tcpoll.Stream}, deadline)
	r, _ := res.Detail.(tcpoll.Result)
	return r, err
}

// enqueuePolled puts polled records on the ingest queue as source events of one delivery, the
// way a webhook delivery goes there.
func (a *App) enqueuePolled(ctx context.Context, account string, source domain.Source, event, delivery string, records []json.RawMessage) error {
	now := a.d.Clock.Now()
	msgs := make([]queue.Message, 0, len(records))
	for i, rec := range records {
		e := SourceEvent{Account: account, Source: source, Name: event, Payload: rec,
			ReceivedAt: now, Delivery: delivery, Index: i, Via: "poll"}
		body, err := EncodeSourceEvent(ctx, a.d.Store, now, e)
		if err != nil {
			return err
		}
		msgs = append(msgs, queue.Message{ID: fmt.Sprintf("e%d", i), Body: body,
			Attributes: map[string]string{"account": account, "source": string(source), "event": event}})
	}
	return a.d.Queue.Send(ctx, queue.Ingest, msgs)
}
