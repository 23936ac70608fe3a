package resource

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
)

// rawDoc is one document of a file before expansion.
type rawDoc struct {
	text string
	line int // file line (1-based) of the document's first line
}

// file splits one file into documents and loads each.
func (l *loader) file(name string, data []byte) {
	doc := 0
	for _, d := range splitDocs(string(data)) {
		if isBlank(d.text) {
			continue
		}
		doc++
		l.doc(Source{File: name, Doc: doc}, d)
	}
}

// splitDocs cuts a file at lines starting with "---" or "..." followed by nothing or
// whitespace. Splitting ourselves, rather than using a YAML stream decoder, lets every
// document fail on its own and gives its line numbers. The marker is blanked rather
// than dropped so that content after it ("--- {a: 1}") stays in place, columns and all.
func splitDocs(s string) []rawDoc {
	s = strings.TrimPrefix(s, "\ufeff")
	var docs []rawDoc
	start, startLine, line := 0, 1, 1
	cut := func(end int) {
		text := s[start:end]
		if isMarker(firstLine(text)) {
			text = "   " + text[3:]
		}
		docs = append(docs, rawDoc{text: text, line: startLine})
	}
	for i := 0; i < len(s); line++ {
		end := strings.IndexByte(s[i:], '\n')
		if end < 0 {
			end = len(s)
		} else {
			end += i
		}
		if i > 0 && isMarker(s[i:end]) {
			cut(i)
			start, startLine = i, line
		}
		i = end + 1
	}
	cut(len(s))
	return docs
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func isMarker(line string) bool {
	if !strings.HasPrefix(line, "---") && !strings.HasPrefix(line, "...") {
		return false
	}
	return len(line) == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r'
}

// isBlank reports whether a document holds only whitespace and comments.
func isBlank(text string) bool {
	for _, ln := range strings.Split(text, "\n") {
		ln = strings.TrimSpace(ln)
		if ln != "" && ln[0] != '#' {
			return false
		}
	}
	return true
}

// expand replaces ${VAR} and ${VAR:-default} and turns $${ into ${. It returns the
// messages of what went wrong and the values it inserted, so that they can be kept
// out of error messages.
func expand(text string, firstLine int, env func(string) (string, bool)) (out string, errs []string, values []string) {
	if !strings.Contains(text, "${") {
		return text, nil, nil
	}
	var b strings.Builder
	line := firstLine
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\n':
			line++
		case c != '$':
		case strings.HasPrefix(text[i:], "$${"):
			b.WriteString("${")
			i += 3
			continue
		case strings.HasPrefix(text[i:], "${"):
			end := strings.IndexAny(text[i+2:], "}\n")
			if end < 0 || text[i+2+end] != '}' {
				errs = append(errs, fmt.Sprintf("line %d: unterminated ${", line))
				i += 2
				continue
			}
			ref := text[i+2 : i+2+end]
			i += 2 + end + 1
			name, def, hasDef, ok := parseVarRef(ref)
			if !ok {
				// The text after ${ is not shown: it may be a literal secret.
				errs = append(errs, fmt.Sprintf("line %d: invalid ${...}: want ${NAME} or ${NAME:-default}, NAME matching [A-Za-z_][A-Za-z0-9_]*", line))
				continue
			}
			v, set := env(name)
			if hasDef && v == "" {
				v, set = def, true
			}
			if !set {
				errs = append(errs, fmt.Sprintf("line %d: environment variable %s is not set (use ${%s:-default} for a default)", line, name, name))
				continue
			}
			values = append(values, v)
			b.WriteString(v)
			continue
		}
		b.WriteByte(c)
		i++
	}
	return b.String(), errs, values
}

func parseVarRef(ref string) (name, def string, hasDef, ok bool) {
	n := 0
	for n < len(ref) && (ref[n] == '_' || ref[n] >= 'A' && ref[n] <= 'Z' || ref[n] >= 'a' && ref[n] <= 'z' || n > 0 && ref[n] >= '0' && ref[n] <= '9') {
		n++
	}
	name, rest := ref[:n], ref[n:]
	switch {
	case name == "":
		return "", "", false, false
	case rest == "":
		return name, "", false, true
	case strings.HasPrefix(rest, ":-") && !strings.Contains(rest, "${"):
		return name, rest[2:], true, true
	}
	return "", "", false, false
}

// header is what must be read before the kind is known.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

const (
	kindBackend      = "Backend"
	kindModelRoute   = "ModelRoute"
	kindAPIKey       = "APIKey"
	kindAccessPolicy = "AccessPolicy"
	kindRateLimit    = "RateLimitPolicy"
	kindPayload      = "PayloadProcessor"
	kindCache        = "CachePolicy"
	kindMCPRoute     = "MCPRoute"
	kindSecret       = "Secret"
)

var secretDocRE = regexp.MustCompile(`(?m)^kind:\s*["']?Secret\b`)

// doc loads one document.
func (l *loader) doc(src Source, d rawDoc) {
	text, errs, values := expand(d.text, d.line, l.env)
	for _, e := range errs {
		l.add(src, "", e)
	}
	if len(errs) > 0 {
		return
	}
	red := newRedactor(values)

	js, err := yaml.YAMLToJSONStrict([]byte(text))
	if err != nil {
		exact := strings.Count(text, "\n") == strings.Count(d.text, "\n")
		for _, m := range yamlMessages(err, d.line, exact, secretDocRE.MatchString(d.text)) {
			l.add(src, "", red.clean(m))
		}
		return
	}
	if string(js) == "null" {
		return // e.g. a lone "~": nothing there
	}
	if len(js) == 0 || js[0] != '{' {
		l.add(src, "", "a document must be a mapping with apiVersion, kind, metadata and spec")
		return
	}
	var h header
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &h); err != nil {
		l.add(src, "", red.clean(jsonMessage(err)))
		return
	}

	ns := h.Metadata.Namespace
	if ns == "" {
		ns = v1alpha1.DefaultNamespace
	}
	ref := ""
	if h.Kind != "" && h.Metadata.Name != "" {
		ref = Ref(h.Kind, ns, h.Metadata.Name)
	}
	switch {
	case h.APIVersion == "" || h.Kind == "":
		var missing []string
		if h.APIVersion == "" {
			missing = append(missing, "apiVersion")
		}
		if h.Kind == "" {
			missing = append(missing, "kind")
		}
		l.add(src, ref, strings.Join(missing, " and ")+" required")
		return
	case !knownKind(h.APIVersion, h.Kind):
		l.add(src, ref, kindMessage(h.APIVersion, h.Kind))
		return
	}

	var obj interface{ SetNamespace(string) }
	switch h.Kind {
	case kindBackend:
		obj = &v1alpha1.Backend{}
	case kindModelRoute:
		obj = &v1alpha1.ModelRoute{}
	case kindAPIKey:
		obj = &v1alpha1.APIKey{}
	case kindAccessPolicy:
		obj = &v1alpha1.AccessPolicy{}
	case kindRateLimit:
		obj = &v1alpha1.RateLimitPolicy{}
	case kindPayload:
		obj = &v1alpha1.PayloadProcessor{}
	case kindCache:
		obj = &v1alpha1.CachePolicy{}
	case kindMCPRoute:
		obj = &v1alpha1.MCPRoute{}
	case kindSecret:
		obj = &corev1.Secret{}
	}

	nerr := len(l.errs)
	if h.Metadata.Name == "" {
		l.add(src, "", fmt.Sprintf("%s: metadata.name is required", h.Kind))
	}
	badBase64 := false
	if h.Kind == kindSecret {
		bad := red.addSecretValues(js)
		for _, k := range bad {
			l.add(src, ref, fmt.Sprintf("data[%q]: not valid base64", k))
		}
		badBase64 = len(bad) > 0
	}
	strict, err := sigsjson.UnmarshalStrict(js, obj)
	// The decoder's own base64 message names no key; the one above does.
	if err != nil && !(badBase64 && strings.HasPrefix(err.Error(), "illegal base64")) {
		l.add(src, ref, red.clean(jsonMessage(err)))
	}
	for _, e := range strict {
		l.add(src, ref, red.clean(e.Error()))
	}
	if ref == "" {
		return
	}
	// Record the origin even of a broken document, so a duplicate is reported too.
	if first, dup := l.set.Origins[ref]; dup {
		l.add(src, ref, "also defined at "+first.String())
		return
	}
	l.set.Origins[ref] = src
	if len(l.errs) > nerr {
		return
	}
	obj.SetNamespace(ns)
	switch o := obj.(type) {
	case *v1alpha1.Backend:
		l.set.Backends = append(l.set.Backends, o)
	case *v1alpha1.ModelRoute:
		l.set.ModelRoutes = append(l.set.ModelRoutes, o)
	case *v1alpha1.APIKey:
		l.set.APIKeys = append(l.set.APIKeys, o)
	case *v1alpha1.AccessPolicy:
		l.set.AccessPolicies = append(l.set.AccessPolicies, o)
	case *v1alpha1.RateLimitPolicy:
		l.set.RateLimitPolicies = append(l.set.RateLimitPolicies, o)
	case *v1alpha1.PayloadProcessor:
		l.set.PayloadProcessors = append(l.set.PayloadProcessors, o)
	case *v1alpha1.CachePolicy:
		l.set.CachePolicies = append(l.set.CachePolicies, o)
	case *v1alpha1.MCPRoute:
		l.set.MCPRoutes = append(l.set.MCPRoutes, o)
	case *corev1.Secret:
		mergeStringData(o)
		l.set.Secrets = append(l.set.Secrets, o)
	}
}

func knownKind(apiVersion, kind string) bool {
	switch kind {
	case kindBackend, kindModelRoute, kindAPIKey, kindAccessPolicy, kindRateLimit, kindPayload, kindCache, kindMCPRoute:
		return apiVersion == v1alpha1.APIVersion
	case kindSecret:
		return apiVersion == "v1"
	}
	return false
}

func kindMessage(apiVersion, kind string) string {
	switch kind {
	case kindBackend, kindModelRoute, kindAPIKey, kindAccessPolicy, kindRateLimit, kindPayload, kindCache, kindMCPRoute:
		return fmt.Sprintf("kind %s has apiVersion %s, not %q", kind, v1alpha1.APIVersion, apiVersion)
	case kindSecret:
		return fmt.Sprintf("kind Secret has apiVersion v1, not %q", apiVersion)
	}
	return fmt.Sprintf("unknown kind %q (apiVersion %q); known: %s Backend, ModelRoute, APIKey, AccessPolicy, RateLimitPolicy, PayloadProcessor and CachePolicy, v1 Secret",
		kind, apiVersion, v1alpha1.APIVersion)
}

// mergeStringData does what the API server does with a Secret's stringData.
func mergeStringData(s *corev1.Secret) {
	if len(s.StringData) > 0 && s.Data == nil {
		s.Data = make(map[string][]byte, len(s.StringData))
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
}

var (
	yamlLineRE   = regexp.MustCompile(`\bline (\d+)\b`)
	yamlAnchorRE = regexp.MustCompile(`anchor '[^']*'`)
	jsonTypeRE   = regexp.MustCompile(`^json: cannot unmarshal (.+) into Go struct field [^.\s]*\.(\S+) of type (.+)$`)
)

// yamlMessages turns a YAML error into messages: one per line, document line numbers
// made file line numbers, and no echoed content where it could be a secret value.
func yamlMessages(err error, firstLine int, exact, secret bool) []string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	var msgs []string
	if rest, ok := strings.CutPrefix(msg, "unmarshal errors:\n"); ok {
		for _, m := range strings.Split(rest, "\n") {
			if m = strings.TrimSpace(m); m != "" {
				msgs = append(msgs, m)
			}
		}
	} else {
		msgs = []string{strings.ReplaceAll(msg, "\n", " ")}
	}
	for i, m := range msgs {
		switch {
		case strings.HasPrefix(m, "unsupported map key"), strings.HasPrefix(m, "invalid map key"):
			// These print the key and the value.
			m = "a map key must be a string, number or boolean"
		case secret:
			m = yamlAnchorRE.ReplaceAllString(m, "anchor")
		}
		msgs[i] = yamlLineRE.ReplaceAllStringFunc(m, func(s string) string {
			n, err := strconv.Atoi(s[len("line "):])
			if err != nil {
				return s
			}
			if !exact {
				return fmt.Sprintf("line %d of the document (after ${} expansion)", n)
			}
			return fmt.Sprintf("line %d", firstLine+n-1)
		})
	}
	return msgs
}

// jsonMessage makes "json: cannot unmarshal string into Go struct field
// BackendSpec.spec.x of type int32" read "spec.x: cannot unmarshal string into int32".
func jsonMessage(err error) string {
	msg := err.Error()
	if m := jsonTypeRE.FindStringSubmatch(msg); m != nil {
		typ := m[3]
		if typ == "[]uint8" {
			typ = "a base64 string"
		}
		msg = m[2] + ": cannot unmarshal " + m[1] + " into " + typ
		if m[1] == "bool" && typ == "string" {
			msg += " (YAML reads unquoted y, yes, no, on, off, true and false as booleans: quote the value)"
		}
		return msg
	}
	return strings.TrimPrefix(msg, "json: ")
}

// redactor keeps values that must not be shown out of messages.
type redactor struct{ values []string }

// minRedact: shorter strings are not worth hiding and would mangle every message.
const minRedact = 4

func newRedactor(values []string) *redactor {
	r := &redactor{}
	for _, v := range values {
		r.addValue(v)
	}
	return r
}

func (r *redactor) addValue(v string) {
	v = strings.TrimSpace(v)
	if len(v) >= minRedact {
		r.values = append(r.values, v)
	}
}

// addSecretValues adds the values of a Secret document's data (raw and decoded) and
// stringData, and returns the keys of data whose values are not base64, sorted. It is
// best effort: the document may not decode.
func (r *redactor) addSecretValues(js []byte) (badBase64 []string) {
	var s struct {
		Data       map[string]any `json:"data"`
		StringData map[string]any `json:"stringData"`
	}
	_ = sigsjson.UnmarshalCaseSensitivePreserveInts(js, &s)
	for _, v := range s.StringData {
		r.addValue(fmt.Sprint(v))
	}
	for k, v := range s.Data {
		str := fmt.Sprint(v)
		r.addValue(str)
		dec, err := base64.StdEncoding.DecodeString(str)
		if err == nil {
			r.addValue(string(dec))
		} else if _, isString := v.(string); isString {
			badBase64 = append(badBase64, k)
		}
	}
	sort.Strings(badBase64)
	return badBase64
}

func (r *redactor) clean(msg string) string {
	for _, v := range r.values {
		msg = strings.ReplaceAll(msg, v, "[redacted]")
	}
	return msg
}
