// Package dashboard serves the live dashboard page of the admin listener: one static
// HTML page, a script and a stylesheet, all embedded in the binary. The page polls the
// Prometheus endpoint that sits next to it on the same listener (the relative URL
// "metrics", so the page and /metrics must share a path prefix), parses the text
// exposition format in the browser and draws its charts from the deltas between polls.
// Nothing is loaded from anywhere else: the Content-Security-Policy allows only the
// page's own origin.
package dashboard

import (
	"embed"
	"net/http"
	"strconv"
)

//go:embed static/*
var static embed.FS

// ContentSecurityPolicy is sent with every response of Handler: only same-origin
// scripts, styles and fetches, no inline script or style, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

type asset struct {
	body        []byte
	contentType string
}

// Handler serves the dashboard: index.html at "/", and app.js and style.css under
// their names. Every other path is 404, every method other than GET and HEAD is 405.
// Mount it at the root of the listener that also serves /metrics (or strip a prefix
// under which /metrics is served too).
func Handler() http.Handler {
	assets := map[string]asset{
		"/":          {mustRead("static/index.html"), "text/html; charset=utf-8"},
		"/app.js":    {mustRead("static/app.js"), "text/javascript; charset=utf-8"},
		"/style.css": {mustRead("static/style.css"), "text/css; charset=utf-8"},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		a, ok := assets[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(a.body)
		}
	})
}

func mustRead(name string) []byte {
	b, err := static.ReadFile(name)
	if err != nil {
		panic("dashboard: embedded " + name + " missing: " + err.Error())
	}
	return b
}
