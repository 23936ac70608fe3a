package signatures

import "bytes"

// special identifies a check that is code rather than word patterns.
type special uint8

const (
	spNone special = iota
	spUnicodeTags
	spInvisible
	spMarkdownImage
	spMarkdownLink
	spHiddenHTML
	spRepetition
	spLongToken
	spManyShot
	spDualLock
	numSpecial
)

// Many-shot turn markers: a word of either list directly followed by a
// colon ("User:", "Q:", "Assistant:").
var (
	roleUserWords = []string{"user", "human", "q", "question", "person", "prompt", "input"}
	roleAsstWords = []string{"assistant", "ai", "a", "answer", "bot", "chatbot", "model", "gpt", "chatgpt", "claude", "response", "output"}
)

// markdownExfil looks at every markdown link or image "[..](url)": a URL
// whose path or query holds a placeholder for data is how a model is
// made to leak the conversation through an image fetch. An image with a
// placeholder matches on its own; a link, or an image with a plain query
// string, only when the text also tells the model to put data into it.
func (st *state) markdownExfil() (img, link bool) {
	text := st.text
	n := len(text)
	checked, context := false, false
	needContext := func() bool {
		if !checked {
			checked = true
			context = st.anyPattern(st.s.exfil, 0, n)
		}
		return context
	}
	for i := st.mdLink; i >= 0 && !(img && link); {
		u := i + 2
		for u < n && (text[u] == ' ' || text[u] == '<') {
			u++
		}
		e := u
		for e < n && e-u < 8192 {
			c := text[e]
			if c == ')' || c == ' ' || c == '\t' || c == '\n' || c == '"' || c == '\'' || c == '>' {
				break
			}
			e++
		}
		isImg := false
		if k := bytes.LastIndexByte(text[max(0, i-1024):i], '['); k >= 0 {
			k += max(0, i-1024)
			isImg = k > 0 && text[k-1] == '!'
		}
		if rest, ok := urlAfterHost(text[u:e]); ok {
			ph := hasPlaceholder(rest)
			query := bytes.IndexAny(rest, "?#") >= 0
			switch {
			case isImg && ph:
				img = true
			case (query || ph) && needContext():
				if isImg {
					img = true
				} else {
					link = true
				}
			}
		}
		j := bytes.Index(text[i+2:], []byte("]("))
		if j < 0 {
			break
		}
		i += 2 + j
	}
	if !img && st.sawTag {
		img = st.htmlImageExfil()
	}
	return img, link
}

// htmlImageExfil checks <img src="..."> the same way as markdown images.
func (st *state) htmlImageExfil() bool {
	text := st.text
	for i := 0; i < len(text); {
		j := indexFold(text[i:], "<img")
		if j < 0 {
			return false
		}
		i += j + 4
		end := min(len(text), i+8192)
		if k := bytes.IndexByte(text[i:end], '>'); k >= 0 {
			end = i + k
		}
		tag := text[i:end]
		s := indexFold(tag, "src=")
		if s < 0 {
			continue
		}
		v := tag[s+4:]
		if len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
			q := v[0]
			v = v[1:]
			if k := bytes.IndexByte(v, q); k >= 0 {
				v = v[:k]
			}
		}
		if rest, ok := urlAfterHost(v); ok && hasPlaceholder(rest) {
			return true
		}
	}
	return false
}

// urlAfterHost returns what follows the host of an absolute http(s) or
// scheme-relative URL.
func urlAfterHost(u []byte) ([]byte, bool) {
	switch {
	case hasPrefixFold(u, "https://"):
		u = u[8:]
	case hasPrefixFold(u, "http://"):
		u = u[7:]
	case bytes.HasPrefix(u, []byte("//")):
		u = u[2:]
	default:
		return nil, false
	}
	k := bytes.IndexAny(u, "/?#")
	if k <= 0 {
		return nil, k == 0
	}
	return u[k:], true
}

// hasPlaceholder reports template markers where data is to be filled in:
// {..}, [..], <..>, $VAR, their percent-encodings, or an ellipsis.
func hasPlaceholder(b []byte) bool {
	if bytes.IndexAny(b, "{}[<$") >= 0 || bytes.Contains(b, []byte("...")) || bytes.Contains(b, []byte("\u2026")) {
		return true
	}
	for _, enc := range []string{"%7b", "%7d", "%5b", "%3c"} {
		if indexFold(b, enc) >= 0 {
			return true
		}
	}
	return false
}

// hiddenHTML reports HTML comments or visually hidden elements whose
// text addresses instructions to a model: content a human reviewer does
// not see but the model reads.
func (st *state) hiddenHTML() bool {
	text := st.text
	n := len(text)
	for i := 0; i < n; {
		j := bytes.Index(text[i:], []byte("<!--"))
		if j < 0 {
			break
		}
		a := i + j + 4
		b := n
		if e := bytes.Index(text[a:], []byte("-->")); e >= 0 {
			b = a + e
		}
		if st.anyPattern(st.s.hidden, a, b) {
			return true
		}
		i = b
	}
	for i := 0; i < n; i++ {
		j := bytes.IndexByte(text[i:], '<')
		if j < 0 {
			break
		}
		i += j
		if i+1 >= n || letterByte[text[i+1]] == 0 {
			continue
		}
		e := bytes.IndexByte(text[i:min(n, i+2048)], '>')
		if e < 0 || !hiddenTag(text[i:i+e]) {
			continue
		}
		a := i + e + 1
		b := min(n, a+16384)
		if k := bytes.Index(text[a:b], []byte("</")); k >= 0 {
			b = a + k
		}
		if st.anyPattern(st.s.hidden, a, b) {
			return true
		}
	}
	return false
}

// hiddenTag reports whether an opening tag hides its content: the hidden
// attribute, display:none, visibility:hidden, zero font size or opacity.
func hiddenTag(tag []byte) bool {
	var spaced, dense [2048]byte
	ns, nd := 0, 0
	for _, c := range tag {
		if c >= 'A' && c <= 'Z' {
			c += 32
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			c = ' '
		} else if nd < len(dense) {
			dense[nd] = c
			nd++
		}
		if ns < len(spaced) {
			spaced[ns] = c
			ns++
		}
	}
	d := dense[:nd]
	if bytes.Contains(d, []byte("display:none")) || bytes.Contains(d, []byte("visibility:hidden")) ||
		zeroValue(d, "font-size:0") || zeroValue(d, "opacity:0") {
		return true
	}
	t := spaced[:ns]
	for i := 0; i < len(t); {
		j := bytes.Index(t[i:], []byte(" hidden"))
		if j < 0 {
			break
		}
		r := i + j + 7
		if r == len(t) || t[r] == ' ' || t[r] == '=' || t[r] == '/' {
			return true
		}
		i = r
	}
	return false
}

// zeroValue finds "prop:0" not followed by more digits ("opacity:0.5").
func zeroValue(d []byte, s string) bool {
	for i := 0; i < len(d); {
		j := bytes.Index(d[i:], []byte(s))
		if j < 0 {
			return false
		}
		r := i + j + len(s)
		if r >= len(d) || (d[r] != '.' && (d[r] < '0' || d[r] > '9')) {
			return true
		}
		i = r
	}
	return false
}
