package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cartrelay/cartrelay/shared/accounts"

	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/rollup"
)

func (c *ctx2) reportsEngine() *reports.Engine {
	return &reports.Engine{Store: c.env.Store, Accounts: c.env.Accounts, Clock: c.io.Clock}
}

// reportFlags are the options every report takes.
type reportFlags struct {
	from, to, by, model, touch, format, months, cohort string
	filter                                             reports.Filter
}

func parseReportFlags(args []string) (reportFlags, []string, error) {
	var f reportFlags
	var err error
	for _, x := range []struct {
		name string
		dst  *string
	}{
		{"--from", &f.from}, {"--to", &f.to}, {"--by", &f.by}, {"--model", &f.model}, {"--touch", &f.touch},
		{"--format", &f.format}, {"--months", &f.months}, {"--cohort", &f.cohort},
		{"--source", &f.filter.Source}, {"--product", &f.filter.Product}, {"--currency", &f.filter.Currency},
		{"--first-source", &f.filter.FirstSource}, {"--first-medium", &f.filter.FirstMedium}, {"--first-campaign", &f.filter.FirstCampaign},
		{"--last-source", &f.filter.LastSource}, {"--last-medium", &f.filter.LastMedium}, {"--last-campaign", &f.filter.LastCampaign},
	} {
		if *x.dst, args, _, err = flagValue(args, x.name); err != nil {
			return f, nil, err
		}
	}
	switch f.format {
	case "", "json", "csv", "table":
	default:
		return f, nil, usagef("--format must be json, csv or table, got %q", f.format)
	}
	return f, args, nil
}

func cmdReports(ctx context.Context, c *ctx2, args []string) error {
	f, args, err := parseReportFlags(args)
	if err != nil {
		return err
	}
	pos, err := positional(args, 2, "KIND ACCOUNT")
	if err != nil {
		return err
	}
	p := reports.Params{Kind: pos[0], From: f.from, To: f.to, By: f.by, Model: f.model, Touch: f.touch,
		Months: f.months, Cohort: f.cohort, Filter: f.filter}
	r, _, err := c.reportsEngine().Run(ctx, pos[1], p)
	var bad *reports.ParamError
	if errors.As(err, &bad) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	switch f.format {
	case "csv":
		return reports.WriteCSV(c.io.Out, r.Tables())
	case "table":
		return reports.WriteText(c.io.Out, r.Tables())
	}
	return writeJSON(c.io.Out, r)
}

func cmdReportsDrill(ctx context.Context, c *ctx2, args []string) error {
	cursor, args, _, err := flagValue(args, "--cursor")
	if err != nil {
		return err
	}
	limit, args, _, err := flagValue(args, "--limit")
	if err != nil {
		return err
	}
	pos, err := positional(args, 2, "ACCOUNT HANDLE")
	if err != nil {
		return err
	}
	n := 0
	if limit != "" {
		if n, err = strconv.Atoi(limit); err != nil || n < 1 || n > 1000 {
			return usagef("--limit must be a whole number from 1 to 1000, got %q", limit)
		}
	}
	page, err := c.reportsEngine().Drill(ctx, pos[0], pos[1], cursor, n)
	if errors.Is(err, reports.ErrBadHandle) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	return writeJSON(c.io.Out, page)
}

func cmdReportsVerify(ctx context.Context, c *ctx2, args []string) error {
	from, args, _, err := flagValue(args, "--from")
	if err != nil {
		return err
	}
	to, args, _, err := flagValue(args, "--to")
	if err != nil {
		return err
	}
	pos, err := positional(args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	var lo, hi rollup.Date
	if (from == "") != (to == "") {
		return usagef("give both --from and --to, or neither (to check everything)")
	}
	if from != "" {
		if lo, err = rollup.ParseDate(from); err != nil {
			return usagef("--from: %v", err)
		}
		if hi, err = rollup.ParseDate(to); err != nil {
			return usagef("--to: %v", err)
		}
	}
	check, err := c.reportsEngine().Verify(ctx, pos[0], lo, hi, nil)
	if err != nil {
		return err
	}
	if err := writeJSON(c.io.Out, check); err != nil {
		return err
	}
	if n := len(check.Differences); n > 0 {
		for _, d := range check.Differences {
			fmt.Fprintln(c.io.Err, d)
		}
		hint := "run `cartrelay reports rebuild " + pos[0] + "` to rebuild the reports from the stored orders"
		if check.Pending > 0 {
			hint = fmt.Sprintf("%d pending rollup write(s) are not applied yet (the schedule applies them within a minute); check again, and if differences remain, %s", check.Pending, hint)
		}
		return fmt.Errorf("the reports of %s differ from the stored orders in %d place(s); %s", pos[0], n, hint)
	}
	return nil
}

// ingestMayRun says whether an ingest may be writing to the data this command uses: always on
// AWS; locally only while a serve runs on the same data directory.
func (c *ctx2) ingestMayRun() bool {
	if c.globals.Backend != "embedded" {
		return true
	}
	serves, err := runningServes(c.io.Getenv)
	if err != nil {
		return true
	}
	data, _ := filepath.Abs(c.globals.Data)
	for _, s := range serves {
		if s.Data == data {
			return true
		}
	}
	return false
}

func cmdReportsRebuild(ctx context.Context, c *ctx2, args []string) error {
	pos, err := positional(args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	account := pos[0]
	acct, err := c.env.Accounts.Get(ctx, account)
	if errors.Is(err, accounts.ErrNotFound) {
		return fmt.Errorf("account %q does not exist (cartrelay accounts list shows the accounts)", account)
	}
	if err != nil {
		return err
	}
	if _, err := reports.RequestBuild(ctx, c.env.Store, account, acct.Timezone, reports.ReasonOperator, c.io.Clock.Now()); err != nil {
		return err
	}
	var bar *progressbar.ProgressBar
	phase := ""
	b := &reports.Builder{Store: c.env.Store, Clock: c.io.Clock, SkipSettle: !c.ingestMayRun(),
		Progress: func(p reports.Progress) {
			if p.Phase != phase {
				phase = p.Phase
				if bar != nil {
					_ = bar.Finish()
					fmt.Fprintln(c.io.Err)
				}
				bar = nil
				switch p.Phase {
				case "settle":
					fmt.Fprintf(c.io.Err, "ingest of %s waits from now until the rebuild is done (its events stay queued); waiting %s for ingests already running\n", account, reports.Settle)
				case "read":
					bar = progressbar.NewOptions64(int64(p.Total), progressbar.OptionSetWriter(c.io.Err),
						progressbar.OptionSetDescription("reading contacts"), progressbar.OptionShowCount(),
						progressbar.OptionSetItsString("contacts"), progressbar.OptionShowIts(), progressbar.OptionThrottle(200*time.Millisecond))
				case "write":
					bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(c.io.Err),
						progressbar.OptionSetDescription("writing rollups"), progressbar.OptionShowCount(),
						progressbar.OptionSetItsString("items"), progressbar.OptionThrottle(200*time.Millisecond))
				}
			}
			switch {
			case bar == nil:
			case p.Phase == "read":
				bar.Describe(fmt.Sprintf("reading contacts (%d orders)", p.Orders))
				_ = bar.Set64(int64(p.Contacts))
			case p.Phase == "write":
				_ = bar.Set64(int64(p.Items))
			}
		}}
	start := time.Now()
	s, err := b.Run(ctx, account)
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(c.io.Err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.io.Err, "%s (in %s)\n", s.LastBuild, time.Since(start).Round(time.Millisecond))
	// Reports answer from the new generation already; the replaced ones' items go now (a
	// failure leaves them to the schedule, which carries on where this stopped).
	bar = nil
	deleted, err := reports.ClearRetired(ctx, c.env.Store, account, c.io.Clock.Now, time.Time{}, func(p reports.ClearProgress) {
		if bar == nil {
			bar = progressbar.NewOptions64(int64(p.Total), progressbar.OptionSetWriter(c.io.Err),
				progressbar.OptionSetDescription(fmt.Sprintf("deleting the rollups of generation %d", p.Generation)), progressbar.OptionShowCount(),
				progressbar.OptionSetItsString("periods"), progressbar.OptionThrottle(200*time.Millisecond))
		}
		_ = bar.Set64(int64(p.Partitions))
		if p.Partitions == p.Total {
			_ = bar.Finish()
			fmt.Fprintln(c.io.Err)
			bar = nil
		}
	})
	if err != nil {
		fmt.Fprintf(c.io.Err, "the rollups of the replaced generations are not all deleted yet (%v); the schedule of cartrelay serve, or the next rebuild, carries on\n", err)
	} else if deleted > 0 {
		fmt.Fprintf(c.io.Err, "deleted %d rollup items of the replaced generations\n", deleted)
	}
	return writeJSON(c.io.Out, map[string]any{"account": account, "generation": s.Active.N, "timezone": s.Active.Zone, "summary": s.LastBuild})
}
