package rollup

import (
	"fmt"
	"sync"
	"time"
)

// Date is a civil date (no time, no zone) as days since 1970-01-01. It is what reports bucket
// by: the local date of an instant in the account's time zone.
type Date int32

// DateOf is the civil date y-m-d.
func DateOf(y int, m time.Month, d int) Date {
	return Date(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// ParseDate reads YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
	}
	return DateOf(t.Date()), nil
}

func (d Date) utc() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// YMD is the date's year, month and day.
func (d Date) YMD() (int, time.Month, int) { return d.utc().Date() }

// String is YYYY-MM-DD.
func (d Date) String() string { return d.utc().Format(time.DateOnly) }

// AddDays is d plus n days.
func (d Date) AddDays(n int) Date { return d + Date(n) }

// Weekday is the date's day of the week.
func (d Date) Weekday() time.Weekday { return d.utc().Weekday() }

// WeekStart is the Monday of the date's week (ISO 8601 weeks start on Monday).
func (d Date) WeekStart() Date {
	return d - Date((int(d.Weekday())+6)%7)
}

// Month is the month the date lies in.
func (d Date) Month() Month {
	y, m, _ := d.YMD()
	return MonthOf(y, m)
}

// Month is a calendar month as months since January of year 0, so that month arithmetic is
// integer arithmetic.
type Month int32

// MonthOf is year y's month m.
func MonthOf(y int, m time.Month) Month { return Month(y*12 + int(m) - 1) }

// ParseMonth reads YYYY-MM.
func ParseMonth(s string) (Month, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a month (YYYY-MM)", s)
	}
	return MonthOf(t.Year(), t.Month()), nil
}

// YM is the month's year and month.
func (m Month) YM() (int, time.Month) { return int(m) / 12, time.Month(int(m)%12 + 1) }

// First is the month's first day.
func (m Month) First() Date {
	y, mm := m.YM()
	return DateOf(y, mm, 1)
}

// Last is the month's last day.
func (m Month) Last() Date { return (m + 1).First() - 1 }

// String is YYYY-MM.
func (m Month) String() string {
	y, mm := m.YM()
	return fmt.Sprintf("%04d-%02d", y, int(mm))
}

// Year is the month's year.
func (m Month) Year() int { return int(m) / 12 }

// Calendar turns instants into the local dates of one time zone.
type Calendar struct {
	loc *time.Location
}

// NewCalendar is the calendar of an IANA zone ("" is UTC).
func NewCalendar(zone string) (Calendar, error) {
	if zone == "" {
		zone = "UTC"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return Calendar{}, fmt.Errorf("time zone %q: %w", zone, err)
	}
	return Calendar{loc: loc}, nil
}

// Zones keeps calendars by zone name: loading a zone parses its rules from the zone database
// (some 70 µs), which ingest would otherwise do for every event. The zero value is ready to use;
// a nil *Zones loads the zone every time.
type Zones struct{ m sync.Map }

// Calendar is NewCalendar(zone), loaded once.
func (z *Zones) Calendar(zone string) (Calendar, error) {
	if z == nil {
		return NewCalendar(zone)
	}
	if c, ok := z.m.Load(zone); ok {
		return c.(Calendar), nil
	}
	c, err := NewCalendar(zone)
	if err != nil {
		return c, err
	}
	z.m.Store(zone, c)
	return c, nil
}

// UTCCalendar is the calendar of UTC.
func UTCCalendar() Calendar { return Calendar{loc: time.UTC} }

// Zone is the calendar's IANA name.
func (c Calendar) Zone() string { return c.location().String() }

func (c Calendar) location() *time.Location {
	if c.loc == nil {
		return time.UTC
	}
	return c.loc
}

// Day is the local date of t.
func (c Calendar) Day(t time.Time) Date {
	return DateOf(t.In(c.location()).Date())
}

// Start is the instant the local date d begins (midnight, or the first instant after a
// daylight saving gap that swallowed midnight).
func (c Calendar) Start(d Date) time.Time {
	y, m, dd := d.YMD()
	return time.Date(y, m, dd, 0, 0, 0, 0, c.location())
}

// Today is the local date now.
func (c Calendar) Today(now time.Time) Date { return c.Day(now) }
