package resource

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// maxDelayFactor bounds how long a steady stream of events can hold a signal back:
// at most maxDelayFactor*debounce after the first event of a burst.
const maxDelayFactor = 10

// Watch reports on the returned channel whenever anything under paths may have changed:
// writes, creates, renames and removes, including editors' rename-on-save and
// Kubernetes ConfigMap ..data symlink swaps. Events less than debounce apart are
// coalesced into one signal (a steady stream still signals every 10*debounce), and
// the channel holds at most one pending signal. Watches are in place when Watch
// returns, and they are updated for new directories and symlink targets before each
// signal, so a Load after a signal misses nothing. The channel is closed when ctx ends.
//
// It fails if the directory holding one of paths cannot be watched; a path itself may
// not exist yet.
func Watch(ctx context.Context, paths []string, debounce time.Duration) (<-chan struct{}, error) {
	w := &watcher{debounce: max(debounce, 0)}
	for _, p := range paths {
		if p == "" {
			return nil, fmt.Errorf("watch: empty path")
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", p, err)
		}
		w.paths = append(w.paths, abs)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w.fw = fw
	if err := w.reconcile(true); err != nil {
		fw.Close()
		return nil, err
	}
	ch := make(chan struct{}, 1)
	go w.run(ctx, ch)
	return ch, nil
}

// dirFilter says which events in one watched directory matter.
type dirFilter struct {
	all      bool            // every entry: a directory the user gave, or one below it
	names    map[string]bool // else only these entries
	dotdot   bool            // and entries named "..*": a ConfigMap's ..data and ..TIMESTAMP
	required bool            // the parent of a path the user gave: failing to watch it is fatal at start
}

type watcher struct {
	paths    []string
	debounce time.Duration
	fw       *fsnotify.Watcher
	dirs     map[string]*dirFilter // what is watched now
}

// desired works out the directories to watch. Directories, not files: a watch on a
// file follows its inode and is lost when an editor or the kubelet replaces the file.
func (w *watcher) desired() map[string]*dirFilter {
	dirs := map[string]*dirFilter{}
	get := func(dir string) *dirFilter {
		f := dirs[dir]
		if f == nil {
			f = &dirFilter{names: map[string]bool{}}
			dirs[dir] = f
		}
		return f
	}
	// A symlinked file changes when its target does, wherever that is.
	follow := func(path string) {
		if target, err := filepath.EvalSymlinks(path); err == nil && target != path {
			get(filepath.Dir(target)).names[filepath.Base(target)] = true
		}
	}
	for _, p := range w.paths {
		// The parent sees the path itself created, removed or replaced.
		parent := get(filepath.Dir(p))
		parent.names[filepath.Base(p)] = true
		parent.required = true
		fi, err := os.Stat(p)
		switch {
		case err != nil:
		case fi.IsDir():
			walkTree(p, func(dir string) { get(dir).all = true },
				func(path string, symlink bool) {
					if symlink {
						follow(path)
					}
				},
				func(string, error) {})
		default:
			parent.dotdot = true
			follow(p)
		}
	}
	return dirs
}

// reconcile makes the watched directories the desired ones.
func (w *watcher) reconcile(initial bool) error {
	want := w.desired()
	for dir := range w.dirs {
		if want[dir] == nil {
			_ = w.fw.Remove(dir) // may be gone already
		}
	}
	names := make([]string, 0, len(want))
	for dir := range want {
		names = append(names, dir)
	}
	sort.Strings(names)
	for _, dir := range names {
		// Adding again is cheap and renews a watch on a directory that was replaced.
		if err := w.fw.Add(dir); err != nil && initial && want[dir].required {
			return fmt.Errorf("watch %s: %w", dir, err)
		}
		// Other failures: it vanished meanwhile, and the event for that reconciles again.
	}
	w.dirs = want
	return nil
}

// relevant reports whether an event may change what Load reads.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false // noisy (indexers, antivirus) and never changes content
	}
	f := w.dirs[filepath.Dir(ev.Name)]
	if f == nil {
		return false
	}
	base := filepath.Base(ev.Name)
	dotdot := strings.HasPrefix(base, "..")
	if f.all {
		// Load skips hidden names, but not the ..data swaps of a ConfigMap mount.
		return dotdot || !strings.HasPrefix(base, ".")
	}
	return f.names[base] || f.dotdot && dotdot
}

func (w *watcher) run(ctx context.Context, ch chan<- struct{}) {
	defer close(ch)
	defer w.fw.Close()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		pending    bool
		first      time.Time // first event of the pending burst
		structural bool      // the pending burst may have added or removed directories or links
	)
	schedule := func() {
		now := time.Now()
		if !pending {
			pending, first = true, now
		}
		wait := w.debounce
		if limit := first.Add(maxDelayFactor * w.debounce).Sub(now); limit < wait {
			wait = max(limit, 0)
		}
		timer.Reset(wait)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			if !w.relevant(ev) {
				continue
			}
			if ev.Op&^fsnotify.Write != 0 {
				structural = true
			}
			schedule()
		case _, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			// Most likely an overflowed event queue: anything may have changed.
			structural = true
			schedule()
		case <-timer.C:
			pending = false
			if structural {
				structural = false
				_ = w.reconcile(false)
			}
			select {
			case ch <- struct{}{}:
			default: // a signal is already pending; that one covers this
			}
		}
	}
}
