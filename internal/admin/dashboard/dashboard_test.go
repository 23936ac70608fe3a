package dashboard

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/sluice-gateway/sluice/internal/gatewaytest/chromium"
)

func TestHandlerServesEmbeddedFiles(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()

	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", "<title>Sluice</title>"},
		{"/app.js", "text/javascript; charset=utf-8", "parseExposition"},
		{"/style.css", "text/css; charset=utf-8", ".legend"},
	} {
		res, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", tc.path, res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != tc.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.contentType)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", tc.path, got)
		}
		checkCSP(t, tc.path, res.Header)
		if !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		if got := res.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) {
			t.Errorf("GET %s: Content-Length %q for %d bytes", tc.path, got, len(body))
		}
	}

	for _, p := range []string{"/index.html", "/static/app.js", "/app.js/", "/metrics", "/favicon.ico", "/style.css.map", "/x/"} {
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, res.StatusCode)
		}
		checkCSP(t, p, res.Header)
	}

	res, err := http.Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: status %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}

	res, err = http.Head(srv.URL + "/app.js")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || len(body) != 0 || res.ContentLength <= 0 {
		t.Errorf("HEAD /app.js: status %d, %d body bytes, Content-Length %d", res.StatusCode, len(body), res.ContentLength)
	}
}

func checkCSP(t *testing.T, path string, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: Content-Security-Policy %q lacks %q", path, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") || strings.Contains(csp, "*") {
		t.Errorf("%s: Content-Security-Policy %q is not strict", path, csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: no X-Content-Type-Options: nosniff", path)
	}
}

// TestPageIsSelfContained checks what the CSP would otherwise break silently: no inline
// script or style, and nothing loaded from another origin.
func TestPageIsSelfContained(t *testing.T) {
	for _, name := range []string{"static/index.html", "static/app.js", "static/style.css"} {
		b, err := static.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "'http://www.w3.org/2000/svg'", "") // the SVG namespace, not a URL to load
		for _, bad := range []string{"http://", "https://", "//cdn", "@import", "url(", "eval(", "new Function", "innerHTML", "setAttribute('style'"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
	b, _ := static.ReadFile("static/index.html")
	doc, err := html.Parse(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range chromium.All(doc, func(n *html.Node) bool { return true }) {
		if n.Data == "script" {
			if src, _ := chromium.Attr(n, "src"); src != "app.js" || n.FirstChild != nil {
				t.Errorf("script element with src %q and content: only <script src=app.js> is allowed", src)
			}
		}
		if n.Data == "style" {
			t.Error("inline <style> element")
		}
		for _, a := range n.Attr {
			if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s %s=...>: inline style or handler", n.Data, a.Key)
			}
		}
	}
	for _, id := range []string{"requests", "tokens-by-team", "tokens-by-model", "latency", "ttft", "blocks", "ratelimits"} {
		sec := chromium.ByID(doc, id)
		if sec == nil || sec.Data != "section" {
			t.Errorf("no <section id=%q>", id)
			continue
		}
		if c, _ := chromium.Attr(sec, "class"); c != "chart" {
			t.Errorf("section %s: class %q, want chart", id, c)
		}
		for _, tag := range []string{"h2", "svg", "ul"} {
			if chromium.First(sec, func(n *html.Node) bool { return n.Data == tag }) == nil {
				t.Errorf("section %s has no <%s>", id, tag)
			}
		}
	}
	for _, id := range []string{"backends", "inflight", "cache", "spend", "error", "updated"} {
		if chromium.ByID(doc, id) == nil {
			t.Errorf("no element with id %q", id)
		}
	}
}

// fakeMetrics serves a Prometheus exposition whose counters and histograms grow by
// fixed amounts on every scrape, plus lines meant to trip a careless parser.
type fakeMetrics struct {
	mu      sync.Mutex
	scrapes int
}

const weirdTeam = "we\"ird\\team\nx"

func (f *fakeMetrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.scrapes++
	n := float64(f.scrapes)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }

	p("# HELP sluice_requests_total Requests by route, backend, team, status and error code.")
	p("# TYPE sluice_requests_total counter")
	p(`sluice_requests_total{route="chat",backend="openai",team="team-a",status="200",code=""} %g`, 10*n)
	p(`sluice_requests_total{route="chat",backend="openai",team="team-b",status="200",code=""} %g`, 5*n)
	p(`sluice_requests_total{route="chat",backend="azure",team="team-b",status="429",code="rate_limited"} %g`, 1*n)
	p(`sluice_requests_total{route="chat",backend="azure",team="team-a",status="502",code=""} %g`, 1*n)
	p("")
	p("# TYPE sluice_tokens_total counter")
	p(`sluice_tokens_total{team="team-a",model="gpt-4o",type="input"} %g`, 100*n)
	p(`sluice_tokens_total{team="team-a",model="gpt-4o",type="output"} %g`, 50*n)
	p(`sluice_tokens_total{team="team-b",model="claude-sonnet",type="input"} %g`, 50*n)
	p(`sluice_tokens_total{team="team-b",model="claude-sonnet",type="output"} %g`, 25*n)
	p(`sluice_tokens_total{ model = "gpt-4o" , team="we\"ird\\team\nx", type="input", } %g 1700000000000`, 1*n)

	// Request duration: team-a observes 10 per scrape in (0.25, 0.5], team-b 1 in
	// (1, 2.5], with its bounds spelled differently. Summed by le, p50 falls in
	// (0.25, 0.5] at 0.25+0.25*5.5/10 and p99 in (1, 2.5] at 1+1.5*0.89.
	p("# TYPE gen_ai_server_request_duration_seconds histogram")
	const labels = `gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o",gen_ai_response_model="gpt-4o",error_type="",route="chat"`
	for _, b := range []struct {
		le string
		c  float64
	}{{"0.1", 0}, {"0.25", 0}, {"0.5", 10}, {"1", 10}, {"2.5", 10}, {"+Inf", 10}} {
		p(`gen_ai_server_request_duration_seconds_bucket{%s,team="team-a",le="%s"} %g`, labels, b.le, b.c*n)
	}
	p(`gen_ai_server_request_duration_seconds_sum{%s,team="team-a"} %g`, labels, 3.5*n)
	p(`gen_ai_server_request_duration_seconds_count{%s,team="team-a"} %g`, labels, 10*n)
	for _, b := range []struct {
		le string
		c  float64
	}{{"0.10", 0}, {"2.5e-01", 0}, {"0.5", 0}, {"1.0", 0}, {"2.50", 1}, {"+Inf", 1}} {
		p(`gen_ai_server_request_duration_seconds_bucket{%s,team="team-b",le="%s"} %g`, labels, b.le, b.c*n)
	}
	p(`gen_ai_server_request_duration_seconds_sum{%s,team="team-b"} %g`, labels, 2*n)
	p(`gen_ai_server_request_duration_seconds_count{%s,team="team-b"} %g`, labels, n)

	// Time to first token: 4 per scrape in (0.05, 0.1]: p50 0.075, p99 0.0995.
	p("# TYPE gen_ai_server_time_to_first_token_seconds histogram")
	for _, b := range []struct {
		le string
		c  float64
	}{{"0.05", 0}, {"0.1", 4}, {"0.25", 4}, {"+Inf", 4}} {
		p(`gen_ai_server_time_to_first_token_seconds_bucket{%s,team="team-a",le="%s"} %g`, labels, b.le, b.c*n)
	}
	p(`gen_ai_server_time_to_first_token_seconds_sum{%s,team="team-a"} %g`, labels, 0.3*n)
	p(`gen_ai_server_time_to_first_token_seconds_count{%s,team="team-a"} %g`, labels, 4*n)

	p(`sluice_processor_actions_total{processor="injection",action="block"} %g`, 2*n)
	p(`sluice_processor_actions_total{processor="pii",action="redact"} %g`, 3*n)
	p(`sluice_ratelimit_decisions_total{policy="default",rule="team-tpm",decision="rejected"} %g`, 1*n)
	p(`sluice_ratelimit_decisions_total{policy="default",rule="team-tpm",decision="allowed"} %g`, 20*n)
	p(`sluice_ratelimit_decisions_total{policy="default",rule="global-rpm",decision="shadow_rejected"} %g`, 1*n)
	p("# TYPE sluice_backend_up gauge")
	p(`sluice_backend_up{backend="openai"} 1`)
	p(`sluice_backend_up{backend="azure"} 0`)
	p(`sluice_backend_in_flight{backend="openai"} 3`)
	p(`sluice_backend_in_flight{backend="azure"} 0`)
	p(`sluice_requests_in_flight 3`)
	p(`sluice_cache_lookups_total{policy="default",result="hit"} %g`, 3*n)
	p(`sluice_cache_lookups_total{policy="default",result="semantic_hit"} %g`, 1*n)
	p(`sluice_cache_lookups_total{policy="default",result="miss"} %g`, 4*n)
	p(`sluice_usage_cost_usd_total{team="team-a",model="gpt-4o"} %g`, 0.01*n)
	p(`sluice_usage_cost_usd_total{team="team-b",model="claude-sonnet"} %g`, 0.005*n)

	// Noise the page must ignore without breaking.
	p(`# HELP weird_metric Help with \\ a backslash and \n a newline.`)
	p(`# TYPE weird_metric gauge`)
	p(`weird_metric{a="x,y}z=",b="\\\"q\""} NaN`)
	p(`weird_metric{a="inf"} +Inf 1700000000000`)
	p(`weird_metric -Inf`)
	p("weird_metric{a=\"crlf\"} 1\r")
	p(`some_summary{quantile="0.5"} 1.5e-3`)
	p(`some_summary_sum 3`)
	p(`some_summary_count 2`)
	p(`{"utf8.metric.name", "label.with.dots"="v"} 7`)
	p(`this line is garbage`)
	p(`unterminated{a="b} 1`)
	p(`# EOF`)
	p(`after_eof{team="ignored"} 1`)
}

// metricsServer serves the dashboard at / and metrics at /metrics on 127.0.0.1.
func metricsServer(t *testing.T, metrics http.Handler) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics)
	mux.Handle("/", Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// page is a dashboard DOM after a Chromium run.
type page struct {
	t   *testing.T
	doc *html.Node
}

func load(t *testing.T, url string) page {
	t.Helper()
	dom := chromium.DumpDOM(t, url, 6*time.Second)
	p := page{t, chromium.ParseDOM(t, dom)}
	body := chromium.First(p.doc, func(n *html.Node) bool { return n.Data == "body" })
	if n, ok := chromium.Attr(body, "data-script-errors"); ok {
		last, _ := chromium.Attr(body, "data-last-script-error")
		t.Errorf("%s script errors, the last: %s", n, last)
	}
	return p
}

func (p page) el(id string) *html.Node {
	p.t.Helper()
	n := chromium.ByID(p.doc, id)
	if n == nil {
		p.t.Fatalf("no element #%s", id)
	}
	return n
}

func (p page) attr(id, key string) string {
	p.t.Helper()
	v, ok := chromium.Attr(p.el(id), key)
	if !ok {
		p.t.Fatalf("#%s has no %s", id, key)
	}
	return v
}

// latest is the data-latest number of #id; NaN if empty.
func (p page) latest(id string) float64 {
	p.t.Helper()
	return number(p.t, id, p.attr(id, "data-latest"))
}

// series returns data-series -> data-latest of the elements under #id.
func (p page) series(id string) map[string]string {
	p.t.Helper()
	out := map[string]string{}
	for _, n := range chromium.All(p.el(id), chromium.HasAttr("data-series")) {
		k, _ := chromium.Attr(n, "data-series")
		out[k], _ = chromium.Attr(n, "data-latest")
	}
	return out
}

func (p page) seriesValue(id, name string) float64 {
	p.t.Helper()
	s := p.series(id)
	v, ok := s[name]
	if !ok {
		p.t.Fatalf("#%s has no series %q: %q", id, name, s)
	}
	return number(p.t, id+"/"+name, v)
}

func number(t *testing.T, what, s string) float64 {
	t.Helper()
	if s == "" {
		return math.NaN()
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%s: data-latest %q: %v", what, s, err)
	}
	return v
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestDashboardInChromium(t *testing.T) {
	chromium.SkipWithout(t)
	t.Parallel()
	fake := &fakeMetrics{}
	srv := metricsServer(t, fake)
	const interval = 500 * time.Millisecond
	p := load(t, srv.URL+"/?interval=500")

	fake.mu.Lock()
	scrapes := fake.scrapes
	fake.mu.Unlock()
	polls, _ := strconv.Atoi(p.attr("updated", "data-polls"))
	t.Logf("%d scrapes, %d polls", scrapes, polls)
	if polls < 6 || scrapes < polls {
		t.Fatalf("the page polled %d times (%d scrapes) in 6 s of virtual time at 500 ms", polls, scrapes)
	}
	if _, hidden := chromium.Attr(p.el("error"), "hidden"); !hidden {
		t.Errorf("error banner not hidden: %q", chromium.Text(p.el("error")))
	}
	if got := p.attr("updated", "data-latest"); !strings.HasSuffix(got, "Z") {
		t.Errorf("last updated %q, want an ISO time", got)
	}
	if got := chromium.Text(p.el("parse-errors")); !strings.HasPrefix(got, "2 unparsable lines") {
		t.Errorf("parse errors %q, want the 2 bad lines counted", got)
	}

	// Per scrape: 17 requests, 2 of them errors (a 429 with a code, a 502).
	perSecond := float64(time.Second) / float64(interval)
	reqs := p.latest("requests")
	if want := 17 * perSecond; reqs < want/2 || reqs > want*2 {
		t.Errorf("requests/s = %v, want about %v", reqs, want)
	}
	if total := p.seriesValue("requests", "total"); total != reqs {
		t.Errorf("requests legend total %v, headline %v", total, reqs)
	}
	if errs := p.seriesValue("requests", "errors"); !near(errs/reqs, 2.0/17, 1e-3) {
		t.Errorf("errors/s = %v of %v requests/s, want 2/17", errs, reqs)
	}

	a, b := p.seriesValue("tokens-by-team", "team-a"), p.seriesValue("tokens-by-team", "team-b")
	if !(a > 0) || !near(a/b, 2, 1e-3) {
		t.Errorf("tokens/s team-a %v, team-b %v: want 2:1", a, b)
	}
	if w := p.seriesValue("tokens-by-team", weirdTeam); !near(w/b, 1.0/75, 1e-3) {
		t.Errorf("tokens/s of the escaped team %v, team-b %v", w, b)
	}
	if sum := p.latest("tokens-by-team"); !near(sum/b, 226.0/75, 1e-3) {
		t.Errorf("total tokens/s %v, team-b %v", sum, b)
	}
	if ga, cs := p.seriesValue("tokens-by-model", "gpt-4o"), p.seriesValue("tokens-by-model", "claude-sonnet"); !near(ga/cs, 151.0/75, 1e-3) {
		t.Errorf("tokens/s gpt-4o %v, claude-sonnet %v: want 151:75", ga, cs)
	}
	if s := p.series("tokens-by-team"); len(s) != 3 {
		t.Errorf("teams %q, want team-a, team-b and the escaped one (nothing after # EOF)", s)
	}

	for _, tc := range []struct {
		id       string
		p50, p99 float64
	}{
		{"latency", 0.25 + 0.25*5.5/10, 1 + 1.5*0.89},
		{"ttft", 0.05 + 0.05*0.5, 0.05 + 0.05*0.99},
	} {
		p50, p99 := p.seriesValue(tc.id, "p50"), p.seriesValue(tc.id, "p99")
		if !near(p50, tc.p50, 1e-4) || !near(p99, tc.p99, 1e-4) {
			t.Errorf("%s: p50 %v p99 %v, want %v and %v", tc.id, p50, p99, tc.p50, tc.p99)
		}
		if got := p.latest(tc.id); got != p99 {
			t.Errorf("%s: data-latest %v, want p99 %v", tc.id, got, p99)
		}
	}

	if blocks := p.series("blocks"); len(blocks) != 1 {
		t.Errorf("blocks by processor %q, want only injection", blocks)
	}
	if inj := p.seriesValue("blocks", "injection"); !near(inj/reqs, 2.0/17, 1e-3) {
		t.Errorf("blocks/s by injection %v", inj)
	}
	tpm := p.seriesValue("ratelimits", "team-tpm")
	if !near(tpm/reqs, 1.0/17, 1e-3) {
		t.Errorf("rejections/s of team-tpm %v", tpm)
	}
	if shadow := p.seriesValue("ratelimits", "global-rpm (shadow)"); !near(shadow, tpm, 1e-9) {
		t.Errorf("shadow rejections/s of global-rpm %v", shadow)
	}
	if got := p.latest("ratelimits"); got != tpm {
		t.Errorf("rejections/s headline %v, want team-tpm's %v (shadow rejections left out)", got, tpm)
	}

	if got := p.series("backends"); got["openai"] != "up" || got["azure"] != "down" || len(got) != 2 {
		t.Errorf("backends %q, want openai up and azure down", got)
	}
	for _, n := range chromium.All(p.el("backends"), chromium.HasAttr("data-series")) {
		name, _ := chromium.Attr(n, "data-series")
		inflight, _ := chromium.Attr(n, "data-in-flight")
		if want := map[string]string{"openai": "3", "azure": "0"}[name]; inflight != want {
			t.Errorf("backend %s in flight %q, want %q", name, inflight, want)
		}
	}
	if got := p.latest("backends"); got != 1 {
		t.Errorf("backends up %v, want 1", got)
	}

	if got := p.latest("inflight"); got != 3 {
		t.Errorf("in flight %v, want 3", got)
	}
	if got := p.latest("cache"); !near(got, 0.5, 1e-9) {
		t.Errorf("cache hit ratio %v, want 0.5", got)
	}
	if got := number(t, "cache lifetime", p.attr("cache", "data-lifetime")); !near(got, 0.5, 1e-9) {
		t.Errorf("lifetime cache hit ratio %v, want 0.5", got)
	}

	sa, sb := p.seriesValue("spend", "team-a"), p.seriesValue("spend", "team-b")
	if want := 0.01 * perSecond * 3600; sa < want/2 || sa > want*2 || !near(sa/sb, 2, 1e-3) {
		t.Errorf("spend/h team-a %v team-b %v, want about %v and half", sa, sb, want)
	}

	// Every chart drew something.
	for _, id := range []string{"requests", "tokens-by-team", "tokens-by-model", "latency", "ttft", "blocks", "ratelimits", "spend"} {
		paths := chromium.All(p.el(id), func(n *html.Node) bool { return n.Data == "path" })
		if len(paths) == 0 {
			t.Errorf("#%s: no lines drawn", id)
		}
		for _, n := range paths {
			d, _ := chromium.Attr(n, "d")
			if strings.Contains(d, "NaN") || strings.Contains(d, "Infinity") {
				t.Errorf("#%s: bad path %q", id, d)
			}
		}
	}
}

// TestDashboardWithoutMetrics: an empty exposition (a gateway that has counted nothing)
// leaves every chart at "no data", without errors.
func TestDashboardWithoutMetrics(t *testing.T) {
	chromium.SkipWithout(t)
	t.Parallel()
	srv := metricsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	}))
	p := load(t, srv.URL+"/?interval=500")
	if polls, _ := strconv.Atoi(p.attr("updated", "data-polls")); polls < 6 {
		t.Errorf("%d polls", polls)
	}
	if _, hidden := chromium.Attr(p.el("error"), "hidden"); !hidden {
		t.Errorf("error banner shown: %q", chromium.Text(p.el("error")))
	}
	for _, id := range []string{"requests", "tokens-by-team", "tokens-by-model", "latency", "ttft", "blocks", "ratelimits", "spend", "backends", "inflight", "cache"} {
		if got := p.attr(id, "data-latest"); got != "" {
			t.Errorf("#%s: data-latest %q with no metrics", id, got)
		}
		if got := chromium.Text(p.el(id)); !strings.Contains(got, "no data") {
			t.Errorf("#%s says %q, want no data", id, got)
		}
	}
}

// TestDashboardIdle: metrics exist but nothing happens: rates are 0, quantiles empty.
func TestDashboardIdle(t *testing.T) {
	chromium.SkipWithout(t)
	t.Parallel()
	srv := metricsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Join([]string{
			`sluice_requests_total{route="chat",backend="openai",team="team-a",status="200",code=""} 42`,
			`sluice_tokens_total{team="team-a",model="gpt-4o",type="input"} 1000`,
			`gen_ai_server_request_duration_seconds_bucket{le="0.5"} 3`,
			`gen_ai_server_request_duration_seconds_bucket{le="+Inf"} 4`,
			`sluice_processor_actions_total{processor="pii",action="redact"} 3`,
			`sluice_requests_in_flight 0`,
			`sluice_cache_lookups_total{policy="p",result="miss"} 4`,
		}, "\n"))
	}))
	p := load(t, srv.URL+"/?interval=500")
	for _, id := range []string{"requests", "tokens-by-team", "blocks", "inflight"} {
		if got := p.attr(id, "data-latest"); got != "0" {
			t.Errorf("#%s: data-latest %q, want 0", id, got)
		}
	}
	if got := p.seriesValue("tokens-by-team", "team-a"); got != 0 {
		t.Errorf("team-a tokens/s %v", got)
	}
	if got := p.attr("latency", "data-latest"); got != "" {
		t.Errorf("latency with no new observations: %q", got)
	}
	if got := chromium.Text(p.el("latency")); !strings.Contains(got, "no requests in the last 10 s") {
		t.Errorf("latency says %q", got)
	}
	if got := p.attr("cache", "data-latest"); got != "" {
		t.Errorf("cache ratio with no new lookups: %q", got)
	}
	if got := p.attr("cache", "data-lifetime"); got != "0" {
		t.Errorf("lifetime cache ratio %q, want 0", got)
	}
}

// TestDashboardShowsPollErrors: a failing /metrics shows the error banner.
func TestDashboardShowsPollErrors(t *testing.T) {
	chromium.SkipWithout(t)
	t.Parallel()
	srv := metricsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	p := load(t, srv.URL+"/?interval=500")
	if _, hidden := chromium.Attr(p.el("error"), "hidden"); hidden {
		t.Fatal("error banner hidden while /metrics fails")
	}
	if got := p.attr("error", "data-latest"); !regexp.MustCompile(`^HTTP 500\b`).MatchString(got) {
		t.Errorf("error %q, want HTTP 500", got)
	}
	if got := p.attr("updated", "data-polls"); got != "0" {
		t.Errorf("%s successful polls", got)
	}
}
