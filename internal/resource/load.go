package resource

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Load reads every path: a file, or a directory standing for every *.yaml and *.yml file
// below it (see the package comment). env looks up ${VAR}; nil means os.LookupEnv. On any
// problem it returns a nil Set and a *LoadError with all of them.
func Load(paths []string, env func(string) (string, bool)) (*Set, error) {
	l := newLoader(env)
	files := l.collect(paths)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			l.add(Source{File: f}, "", describe(err))
			continue
		}
		l.file(f, data)
	}
	return l.result()
}

// LoadBytes is Load for one in-memory file; name is used as Source.File.
func LoadBytes(name string, data []byte, env func(string) (string, bool)) (*Set, error) {
	l := newLoader(env)
	l.file(name, data)
	return l.result()
}

type loader struct {
	env  func(string) (string, bool)
	set  *Set
	errs []Error
}

func newLoader(env func(string) (string, bool)) *loader {
	if env == nil {
		env = os.LookupEnv
	}
	return &loader{env: env, set: &Set{Origins: map[string]Source{}}}
}

func (l *loader) add(src Source, ref, msg string) {
	l.errs = append(l.errs, Error{Source: src, Ref: ref, Msg: msg})
}

func (l *loader) result() (*Set, error) {
	if len(l.errs) == 0 {
		return l.set, nil
	}
	// Stable: errors of one document keep the order they were found in.
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i].Source, l.errs[j].Source
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Doc < b.Doc
	})
	return nil, &LoadError{Errors: l.errs}
}

// collect expands paths into the files to read, in order, each once.
func (l *loader) collect(paths []string) []string {
	var files []string
	seen := map[string]bool{}
	add := func(p string) {
		key := p
		if abs, err := filepath.Abs(p); err == nil {
			key = abs
		}
		if !seen[key] {
			seen[key] = true
			files = append(files, p)
		}
	}
	for _, p := range paths {
		if p == "" {
			l.add(Source{File: p}, "", "empty path")
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			l.add(Source{File: p}, "", describe(err))
			continue
		}
		if !fi.IsDir() {
			add(p)
			continue
		}
		walkTree(p, func(string) {}, func(path string, _ bool) { add(path) },
			func(path string, err error) { l.add(Source{File: path}, "", describe(err)) })
	}
	return files
}

// walkTree visits dir and every non-hidden directory below it, and every non-hidden
// YAML file (symlinks to files included). Unlike filepath.WalkDir it follows dir itself
// when that is a symlink, which is how ConfigMaps are often mounted.
func walkTree(dir string, visitDir func(dir string), visitFile func(path string, symlink bool), onErr func(path string, err error)) {
	visitDir(dir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		onErr(dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		switch {
		case e.IsDir():
			walkTree(path, visitDir, visitFile, onErr)
		case !isYAML(name):
		case e.Type().IsRegular():
			visitFile(path, false)
		case e.Type()&fs.ModeSymlink != 0:
			fi, err := os.Stat(path)
			if err != nil {
				onErr(path, err)
			} else if fi.Mode().IsRegular() {
				visitFile(path, true)
			}
		}
	}
}

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// describe drops the path from an *fs.PathError: the Source already names it.
func describe(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}
