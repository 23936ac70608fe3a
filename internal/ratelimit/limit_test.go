package ratelimit

import (
	"testing"
	"time"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWindow(t *testing.T) {
	cases := []struct {
		name       string
		lim        Limit
		at         string
		start, end string
	}{
		{"second", Limit{Period: Second, Count: 1}, "2026-03-04T05:06:07.89Z", "2026-03-04T05:06:07Z", "2026-03-04T05:06:08Z"},
		{"10 seconds", Limit{Period: Second, Count: 10}, "2026-03-04T05:06:07.89Z", "2026-03-04T05:06:00Z", "2026-03-04T05:06:10Z"},
		{"minute", Limit{Period: Minute, Count: 1}, "2026-03-04T05:06:07Z", "2026-03-04T05:06:00Z", "2026-03-04T05:07:00Z"},
		{"count 0 is 1", Limit{Period: Minute}, "2026-03-04T05:06:07Z", "2026-03-04T05:06:00Z", "2026-03-04T05:07:00Z"},
		{"5 minutes", Limit{Period: Minute, Count: 5}, "2026-03-04T05:09:59.999Z", "2026-03-04T05:05:00Z", "2026-03-04T05:10:00Z"},
		{"hour", Limit{Period: Hour, Count: 1}, "2026-03-04T05:59:59Z", "2026-03-04T05:00:00Z", "2026-03-04T06:00:00Z"},
		{"3 hours", Limit{Period: Hour, Count: 3}, "2026-03-04T05:00:00Z", "2026-03-04T03:00:00Z", "2026-03-04T06:00:00Z"},
		{"day", Limit{Period: Day, Count: 1}, "2026-03-04T23:59:59.999Z", "2026-03-04T00:00:00Z", "2026-03-05T00:00:00Z"},
		{"day boundary", Limit{Period: Day, Count: 1}, "2026-03-05T00:00:00Z", "2026-03-05T00:00:00Z", "2026-03-06T00:00:00Z"},
		{"day in UTC, not local", Limit{Period: Day, Count: 1}, "2026-03-04T23:30:00-05:00", "2026-03-05T00:00:00Z", "2026-03-06T00:00:00Z"},
		// 2026-03-04 is epoch day 20516; 7-day windows start at multiples of 7 (20510 = 2026-02-26).
		{"7 days from epoch", Limit{Period: Day, Count: 7}, "2026-03-04T12:00:00Z", "2026-02-26T00:00:00Z", "2026-03-05T00:00:00Z"},
		{"month", Limit{Period: Month, Count: 1}, "2026-01-31T23:59:59.999Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"},
		{"month Jan 31 -> Feb 1", Limit{Period: Month, Count: 1}, "2026-02-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		{"month Dec", Limit{Period: Month, Count: 1}, "2025-12-31T23:59:59Z", "2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"month Dec -> Jan", Limit{Period: Month, Count: 1}, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"},
		{"leap February", Limit{Period: Month, Count: 1}, "2028-02-29T23:59:59Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"},
		{"non-leap February", Limit{Period: Month, Count: 1}, "2027-02-28T12:00:00Z", "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z"},
		{"quarter", Limit{Period: Month, Count: 3}, "2026-05-15T00:00:00Z", "2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z"},
		{"quarter across year", Limit{Period: Month, Count: 3}, "2025-12-15T00:00:00Z", "2025-10-01T00:00:00Z", "2026-01-01T00:00:00Z"},
		// Months since 1970-01: 2026-03 is month 674; 5-month windows start at 670 = 2025-11.
		{"5 months from epoch", Limit{Period: Month, Count: 5}, "2026-03-10T00:00:00Z", "2025-11-01T00:00:00Z", "2026-04-01T00:00:00Z"},
		{"before epoch", Limit{Period: Month, Count: 1}, "1969-12-31T23:00:00Z", "1969-12-01T00:00:00Z", "1970-01-01T00:00:00Z"},
	}
	for _, c := range cases {
		s, e := c.lim.Window(ts(c.at))
		if !s.Equal(ts(c.start)) || !e.Equal(ts(c.end)) {
			t.Errorf("%s: Window(%s) = [%s, %s), want [%s, %s)", c.name, c.at, s, e, c.start, c.end)
		}
		if s.Location() != time.UTC {
			t.Errorf("%s: window not in UTC", c.name)
		}
	}
}

func TestParseAndValidate(t *testing.T) {
	for _, n := range []string{"Requests", "Tokens", "InputTokens", "OutputTokens"} {
		u, err := ParseUnit(n)
		if err != nil || u.String() != n {
			t.Errorf("ParseUnit(%q) = %v, %v", n, u, err)
		}
	}
	for _, n := range []string{"Second", "Minute", "Hour", "Day", "Month"} {
		p, err := ParsePeriod(n)
		if err != nil || p.String() != n {
			t.Errorf("ParsePeriod(%q) = %v, %v", n, p, err)
		}
	}
	if _, err := ParseUnit("tokens"); err == nil {
		t.Error("ParseUnit accepts a lower-case name")
	}
	if _, err := ParsePeriod("Week"); err == nil {
		t.Error("ParsePeriod accepts Week")
	}
	if err := (Limit{Unit: Tokens, Volume: 10, Period: Month, Count: 1}).Validate(); err != nil {
		t.Error(err)
	}
	for _, l := range []Limit{{Volume: -1, Count: 1}, {Period: 9, Count: 1}, {Unit: 9, Count: 1}, {Volume: 1}} {
		if l.Validate() == nil {
			t.Errorf("%+v validates", l)
		}
	}
}
