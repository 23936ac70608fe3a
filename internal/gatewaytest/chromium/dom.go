package chromium

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// ParseDOM parses the DOM that DumpDOM returned, failing the test if it can't.
func ParseDOM(t testing.TB, dom string) *html.Node {
	t.Helper()
	n, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatalf("parsing the DOM: %v", err)
	}
	return n
}

// ByID returns the element with the id under n, or nil.
func ByID(n *html.Node, id string) *html.Node {
	return First(n, func(e *html.Node) bool {
		v, ok := Attr(e, "id")
		return ok && v == id
	})
}

// First returns the first element under n (n included) that match accepts, in
// document order, or nil.
func First(n *html.Node, match func(*html.Node) bool) *html.Node {
	if all := findAll(n, match, 1); len(all) > 0 {
		return all[0]
	}
	return nil
}

// All returns the elements under n (n included) that match accepts, in document order.
func All(n *html.Node, match func(*html.Node) bool) []*html.Node {
	return findAll(n, match, -1)
}

func findAll(n *html.Node, match func(*html.Node) bool, limit int) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node) bool
	walk = func(n *html.Node) bool {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
			if len(out) == limit {
				return false
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if !walk(c) {
				return false
			}
		}
		return true
	}
	if n != nil {
		walk(n)
	}
	return out
}

// HasAttr matches the elements that have the attribute key.
func HasAttr(key string) func(*html.Node) bool {
	return func(n *html.Node) bool {
		_, ok := Attr(n, key)
		return ok
	}
}

// Attr returns the value of the attribute key of n, and whether n has it.
func Attr(n *html.Node, key string) (string, bool) {
	if n == nil {
		return "", false
	}
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// Text returns the text content of n, its whitespace collapsed.
func Text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	if n != nil {
		walk(n)
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
