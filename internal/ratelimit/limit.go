package ratelimit

import (
	"errors"
	"fmt"
	"time"
)

// Unit is what a limit counts (volumeUnits).
type Unit uint8

// Units. The unit tells the caller which cost to compute for an [Item]; the
// store counts whatever cost it is given.
const (
	Requests Unit = iota
	Tokens
	InputTokens
	OutputTokens
)

var unitNames = [...]string{"Requests", "Tokens", "InputTokens", "OutputTokens"}

func (u Unit) String() string {
	if int(u) < len(unitNames) {
		return unitNames[u]
	}
	return fmt.Sprintf("Unit(%d)", u)
}

// ParseUnit parses a volumeUnits name ("Requests", "Tokens", "InputTokens",
// "OutputTokens").
func ParseUnit(s string) (Unit, error) {
	for i, n := range unitNames {
		if n == s {
			return Unit(i), nil
		}
	}
	return 0, fmt.Errorf("ratelimit: unknown unit %q (want Requests, Tokens, InputTokens or OutputTokens)", s)
}

// Period is the time unit of a limit (timeUnit).
type Period uint8

// Periods. Second, Minute and Hour use the sliding-window approximation; Day
// and Month are fixed UTC calendar windows.
const (
	Second Period = iota
	Minute
	Hour
	Day
	Month
)

var periodNames = [...]string{"Second", "Minute", "Hour", "Day", "Month"}

func (p Period) String() string {
	if int(p) < len(periodNames) {
		return periodNames[p]
	}
	return fmt.Sprintf("Period(%d)", p)
}

// ParsePeriod parses a timeUnit name ("Second", "Minute", "Hour", "Day",
// "Month").
func ParsePeriod(s string) (Period, error) {
	for i, n := range periodNames {
		if n == s {
			return Period(i), nil
		}
	}
	return 0, fmt.Errorf("ratelimit: unknown period %q (want Second, Minute, Hour, Day or Month)", s)
}

// Limit is Volume units per Count periods.
type Limit struct {
	Unit   Unit
	Volume int64
	Period Period
	Count  int // timeValue; values below 1 are treated as 1
}

// Rule is one rate-limit rule. Rules are used by pointer and must not change
// while requests reserved under them are unsettled.
type Rule struct {
	Name   string
	Limit  Limit
	Shadow bool // count and report, never deny
}

// ErrInvalidLimit is returned for a limit with an unknown unit or period or a
// negative volume.
var ErrInvalidLimit = errors.New("ratelimit: invalid limit")

// Validate reports whether l can be used.
func (l Limit) Validate() error {
	switch {
	case l.Unit > OutputTokens:
		return fmt.Errorf("%w: unknown unit %d", ErrInvalidLimit, l.Unit)
	case l.Period > Month:
		return fmt.Errorf("%w: unknown period %d", ErrInvalidLimit, l.Period)
	case l.Volume < 0:
		return fmt.Errorf("%w: volume %d must be >= 0", ErrInvalidLimit, l.Volume)
	case l.Count < 1:
		return fmt.Errorf("%w: timeValue %d must be >= 1", ErrInvalidLimit, l.Count)
	}
	return nil
}

func (l *Limit) valid() bool { return l.Period <= Month && l.Volume >= 0 }

func (l *Limit) count() int64 {
	if l.Count < 1 {
		return 1
	}
	return int64(l.Count)
}

// Sliding reports whether l uses the sliding-window approximation (Second,
// Minute, Hour) rather than an exact calendar window (Day, Month).
func (l Limit) Sliding() bool { return l.Period < Day }

// size returns the window length in nanoseconds for sliding limits and 0 for
// calendar limits.
func (l *Limit) size() int64 {
	switch l.Period {
	case Second:
		return int64(time.Second) * l.count()
	case Minute:
		return int64(time.Minute) * l.count()
	case Hour:
		return int64(time.Hour) * l.count()
	}
	return 0
}

const nsPerDay = int64(24 * time.Hour)

// Window returns the window of l containing t, as [start, end) in UTC.
//
// Second, Minute and Hour: fixed windows of Count × period aligned to the Unix
// epoch; the sliding-window estimate weighs the previous one of these against
// the current one. Day: Count UTC days aligned to the epoch day, so a budget
// resets at 00:00 UTC. Month: Count calendar months aligned to months since
// January 1970, so a budget resets at 00:00 UTC on the 1st.
func (l Limit) Window(t time.Time) (start, end time.Time) {
	s, e := l.window(t.UnixNano())
	return time.Unix(0, s).UTC(), time.Unix(0, e).UTC()
}

// window returns the window containing ns (Unix nanoseconds) as [start, end).
func (l *Limit) window(ns int64) (start, end int64) {
	var size int64
	switch l.Period {
	case Second, Minute, Hour:
		size = l.size()
	case Day:
		size = nsPerDay * l.count()
	default: // Month
		t := time.Unix(0, ns).UTC()
		y, mo, _ := t.Date()
		m := int64(y-1970)*12 + int64(mo) - 1
		m -= floorMod(m, l.count())
		s := time.Date(1970, time.Month(m+1), 1, 0, 0, 0, 0, time.UTC)
		e := time.Date(1970, time.Month(m+l.count()+1), 1, 0, 0, 0, 0, time.UTC)
		return s.UnixNano(), e.UnixNano()
	}
	start = ns - floorMod(ns, size)
	return start, start + size
}

func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
