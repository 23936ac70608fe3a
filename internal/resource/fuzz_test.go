package resource_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/resource"
)

func FuzzLoadBytes(f *testing.F) {
	seeds := []string{
		backend("a") + "---\n" + routeDoc,
		"---\n# c\n---   # x\n" + backend("${NAME:-b}") + "  url: ${URL}\n  x: $${Y}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: c2VjcmV0}\nstringData: {k: v}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: '!!'}\n",
		backend("x") + "  timeouts: {connect: 5s, bogus: 1}\n",
		"kind: Nope\n--- {a: 1}\n...\n- list\n",
		"a: *x\n? [k]\n: v\nb: &y 1\nb: 2\n",
		"${UNSET}\n${1}\n${A:-${B}}\n${unterminated\n",
		"\ufeff" + strings.ReplaceAll(backend("w"), "\n", "\r\n"),
		"~\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	env := func(k string) (string, bool) {
		switch k {
		case "NAME":
			return "n", true
		case "URL":
			return "http://x:1/v1\n  injected: [", true
		case "EMPTY":
			return "", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := resource.LoadBytes("f.yaml", data, env)
		if err != nil {
			var le *resource.LoadError
			if !errors.As(err, &le) || len(le.Errors) == 0 || set != nil {
				t.Fatalf("bad error result: set=%v err=%#v", set, err)
			}
			return
		}
		if n := len(set.Backends) + len(set.ModelRoutes) + len(set.Secrets); n != len(set.Origins) {
			t.Fatalf("%d resources, %d origins", n, len(set.Origins))
		}
		for _, s := range set.Secrets {
			if s.StringData != nil {
				t.Fatal("stringData left in a Secret")
			}
		}
	})
}
