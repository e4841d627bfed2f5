package ultracart

import (
	"errors"
	"strings"
	"time"
)

// Layouts UltraCart timestamps come in. Fractional seconds are accepted after the seconds by
// time.Parse even when a layout does not show them.
var (
	zonedLayouts = []string{
		time.RFC3339,
		"2006-01-02T15:04:05Z0700",
		"2006-01-02 15:04:05Z07:00",
		"2006-01-02 15:04:05Z0700",
		"2006-01-02T15:04Z07:00",
	}
	wallLayouts = []string{
		"2006-01-02T15:04:05",
		"2006-01-02 15:04:05",
		"2006-01-02T15:04",
		"2006-01-02",
	}
)

var errBadTime = errors.New("is not a date-time UltraCart writes (expected e.g. 2021-05-18T14:03:01-04:00)")

// parseTime reads an UltraCart timestamp; "" gives the zero time. A timestamp without an
// offset is US Eastern wall time (see the package doc). The result is UTC.
func parseTime(s Text) (time.Time, error) {
	v := strings.TrimSpace(string(s))
	if v == "" {
		return time.Time{}, nil
	}
	for _, l := range zonedLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), nil
		}
	}
	for _, l := range wallLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return easternToUTC(t), nil
		}
	}
	return time.Time{}, errBadTime
}

// easternToUTC reads w's wall clock (its location is ignored) as US Eastern time.
func easternToUTC(w time.Time) time.Time {
	wall := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), time.UTC)
	offset := 5 * time.Hour // EST, UTC-5
	if easternDST(wall) {
		offset = 4 * time.Hour // EDT, UTC-4
	}
	return wall.Add(offset)
}

// easternDST reports whether a US Eastern wall time falls in daylight-saving time. Since 2007
// DST runs from 02:00 on the second Sunday of March to 02:00 on the first Sunday of November;
// from 1987 to 2006 from the first Sunday of April to the last Sunday of October. The
// repeated autumn hour counts as daylight time.
func easternDST(wall time.Time) bool {
	y := wall.Year()
	var start, end time.Time
	if y >= 2007 {
		start = nthSunday(y, time.March, 2)
		end = nthSunday(y, time.November, 1)
	} else {
		start = nthSunday(y, time.April, 1)
		end = lastSunday(y, time.October)
	}
	start = start.Add(2 * time.Hour)
	end = end.Add(2 * time.Hour)
	return !wall.Before(start) && wall.Before(end)
}

func nthSunday(y int, m time.Month, n int) time.Time {
	first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	d := (7 - int(first.Weekday())) % 7
	return first.AddDate(0, 0, d+7*(n-1))
}

func lastSunday(y int, m time.Month) time.Time {
	last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC)
	return last.AddDate(0, 0, -int(last.Weekday()))
}

// timeField parses a required-format timestamp, naming the field on error.
func timeField(field string, s Text) (time.Time, error) {
	t, err := parseTime(s)
	if err != nil {
		return time.Time{}, &fieldError{field: field, reason: quoteShort(string(s)) + " " + err.Error(), err: err}
	}
	return t, nil
}

// softTime parses a timestamp that is informational only: one that cannot be read is ignored
// rather than failing the event.
func softTime(s Text) time.Time {
	t, _ := parseTime(s)
	return t
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

func firstNonZero(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}
