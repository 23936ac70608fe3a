package resource_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/resource"
)

// Generous: only reached when a signal that should come does not.
const waitTimeout = 10 * time.Second

const debounce = 50 * time.Millisecond

func watch(t *testing.T, paths ...string) <-chan struct{} {
	t.Helper()
	return watchDebounce(t, debounce, paths...)
}

func watchDebounce(t *testing.T, debounce time.Duration, paths ...string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := resource.Watch(ctx, paths, debounce)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		waitClosed(t, ch)
	})
	return ch
}

func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("%s: no signal", what)
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("channel not closed after cancel")
		}
	}
}

func TestWatchFileWrite(t *testing.T) {
	f := filepath.Join(t.TempDir(), "config.yaml")
	write(t, f, backend("a"))
	ch := watch(t, f)
	write(t, f, backend("b"))
	waitSignal(t, ch, "write")
	write(t, f, backend("c"))
	waitSignal(t, ch, "second write")
}

func TestWatchRenameSave(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "config.yaml")
	write(t, f, backend("a"))
	ch := watch(t, f)
	for i, name := range []string{"b", "c"} {
		// What editors do: write a temporary file, rename it over the original.
		tmp := filepath.Join(dir, ".config.yaml.tmp")
		write(t, tmp, backend(name))
		if err := os.Rename(tmp, f); err != nil {
			t.Fatal(err)
		}
		waitSignal(t, ch, "rename-save "+name)
		if i == 0 {
			// The file's new inode is watched too (via its directory).
			write(t, f, backend("after-rename"))
			waitSignal(t, ch, "write after rename")
		}
	}
}

func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "..2024_01", "config.yaml"), backend("old"))
	if err := os.Symlink("..2024_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "config.yaml")
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), f); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{f, dir} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ch := watch(t, path)
			// What the kubelet does: new directory, new ..data link renamed over the old.
			ts := "..2024_" + filepath.Base(path)
			write(t, filepath.Join(dir, ts, "config.yaml"), backend("new"))
			tmp := filepath.Join(dir, "..data_tmp")
			if err := os.Symlink(ts, tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
			waitSignal(t, ch, "..data swap")
			set := mustLoad(t, path)
			if len(set.Backends) != 1 || set.Backends[0].Name != "new" {
				t.Errorf("after swap: %+v", set.Backends)
			}
		})
	}
}

func TestWatchNewFileInDir(t *testing.T) {
	dir := t.TempDir()
	ch := watch(t, dir)
	write(t, filepath.Join(dir, "new.yaml"), backend("a"))
	waitSignal(t, ch, "new file")
}

func TestWatchNewSubdirectory(t *testing.T) {
	dir := t.TempDir()
	ch := watch(t, dir)
	sub := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, "new subdirectory")
	// The signal comes after the new directories are watched.
	write(t, filepath.Join(sub, "x.yaml"), backend("x"))
	waitSignal(t, ch, "file in new subdirectory")
	write(t, filepath.Join(sub, "x.yaml"), backend("y"))
	waitSignal(t, ch, "write in new subdirectory")
}

func TestWatchDirectoryReplaced(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "conf")
	write(t, filepath.Join(dir, "a.yaml"), backend("a"))
	ch := watch(t, dir)
	write(t, filepath.Join(root, "conf.new", "a.yaml"), backend("b"))
	if err := os.Rename(dir, filepath.Join(root, "conf.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "conf.new"), dir); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, "directory replaced")
	write(t, filepath.Join(dir, "a.yaml"), backend("c"))
	waitSignal(t, ch, "write in replacement directory")
}

func TestWatchIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "config.yaml")
	write(t, f, backend("a"))
	sub := filepath.Join(dir, "sub")
	write(t, filepath.Join(sub, "x.yaml"), backend("x"))
	chFile, chDir := watch(t, f), watch(t, sub)
	// None of these is what was asked for; hidden names are not loaded.
	write(t, filepath.Join(dir, "other.yaml"), backend("b"))
	write(t, filepath.Join(dir, ".config.yaml.swp"), "x")
	write(t, filepath.Join(sub, ".x.yaml.swp"), "x")
	write(t, filepath.Join(sub, ".git", "index"), "x")
	select {
	case <-chFile:
		t.Error("file watch: signal for unrelated files")
	case <-chDir:
		t.Error("directory watch: signal for hidden files")
	case <-time.After(4 * debounce):
	}
	write(t, f, backend("c"))
	waitSignal(t, chFile, "write")
	write(t, filepath.Join(sub, "x.yaml"), backend("y"))
	waitSignal(t, chDir, "write in directory")
}

func TestWatchCoalesces(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "config.yaml")
	write(t, f, backend("a"))
	// Longer than elsewhere, so that a slow machine does not split the burst.
	const debounce = 250 * time.Millisecond
	ch := watchDebounce(t, debounce, dir)

	// A burst longer than the debounce whose events are closer than it: the signal
	// must come once, and no sooner than debounce after the last write.
	tick := time.NewTicker(debounce / 8)
	defer tick.Stop()
	var last time.Time
	for i := range 10 {
		<-tick.C
		write(t, f, backend("b"))
		write(t, filepath.Join(dir, "n"+string(rune('a'+i))+".yaml"), backend("c"))
		last = time.Now()
	}
	waitSignal(t, ch, "burst")
	// last is read after the writes return, a moment after the watcher saw them: allow
	// that moment.
	if since := time.Since(last); since < debounce-debounce/20 {
		t.Errorf("signal %v after the last event, want >= %v", since, debounce)
	}
	select {
	case <-ch:
		t.Error("second signal for one burst")
	case <-time.After(3 * debounce):
	}
}

func TestWatchCancel(t *testing.T) {
	f := filepath.Join(t.TempDir(), "config.yaml")
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := resource.Watch(ctx, []string{f}, debounce) // the file need not exist yet
	if err != nil {
		t.Fatal(err)
	}
	write(t, f, backend("a"))
	waitSignal(t, ch, "created")
	cancel()
	waitClosed(t, ch)
}

func TestWatchMissingParent(t *testing.T) {
	_, err := resource.Watch(context.Background(), []string{filepath.Join(t.TempDir(), "no", "such.yaml")}, debounce)
	if err == nil {
		t.Error("want an error for a path whose directory does not exist")
	}
}
