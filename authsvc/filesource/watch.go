package filesource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long Watcher waits for a burst of changes to end
// before it reports them.
const DefaultDebounce = 200 * time.Millisecond

// Watcher reports changes under the paths given to Load: a file written in
// place, a file replaced by rename (as editors save), a file created or removed
// in a watched folder, and the "..data" symlink swap Kubernetes does to update
// a mounted ConfigMap or Secret volume.
//
// It watches folders, never files: a watch on a file is lost when the file is
// replaced. A folder given as a path is watched with every folder Load walks
// under it; a file given as a path is watched through its parent folder (and,
// when it is a symlink, through the folder of its target), with events for
// other names ignored, except for the "..name" entries of mounted volumes. The
// set of watched folders is brought up to date after every change, so new
// subfolders and new symlink targets are watched too.
type Watcher struct {
	paths    []string
	debounce time.Duration
	log      *slog.Logger
	fsw      *fsnotify.Watcher
	// watched maps each watched folder (absolute) to what in it matters.
	// Only NewWatcher and then Run's goroutine use it.
	watched   map[string]dirFilter
	closeOnce sync.Once
}

// dirFilter says which entries of a watched folder matter.
type dirFilter struct {
	all   bool            // every entry that Load could read: a folder given as a path
	names map[string]bool // only these: the parent of a file given as a path
}

// NewWatcher starts watching the folders that hold paths. debounce <= 0 means
// DefaultDebounce; a nil logger means slog.Default(). It fails when a folder
// cannot be watched, for instance when a path's parent folder does not exist.
// Call Run, or Close if Run is never called.
func NewWatcher(paths []string, debounce time.Duration, logger *slog.Logger) (*Watcher, error) {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	if logger == nil {
		logger = slog.Default()
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch config files: %w", err)
	}
	w := &Watcher{
		paths:    paths,
		debounce: debounce,
		log:      logger,
		fsw:      fsw,
		watched:  map[string]dirFilter{},
	}
	if err := w.sync(); err != nil {
		_ = w.Close()
		return nil, err
	}
	return w, nil
}

// Run calls onChange, from Run's goroutine, once a burst of changes has been
// quiet for the debounce time (or has lasted four debounce times, so that a
// folder that never stops changing still gets reloaded). It blocks until ctx
// ends, then stops watching. Run may be called once.
func (w *Watcher) Run(ctx context.Context, onChange func()) {
	defer func() { _ = w.Close() }()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	maxDelay := 4 * w.debounce
	var (
		pending bool
		first   time.Time // of the pending burst
	)
	changed := func(why string, attrs ...any) {
		now := time.Now()
		if !pending {
			pending, first = true, now
			w.log.Debug("config change seen", append(attrs, "why", why)...)
		}
		if now.Sub(first) < maxDelay {
			timer.Reset(w.debounce) // Go 1.23+: Reset needs no drained channel
		}
	}
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if w.relevant(ev) {
				changed("file event", "file", ev.Name, "op", ev.Op.String())
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.log.Warn("watching config files", "err", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				changed("events lost") // something changed; reload to be sure
			}
		case <-timer.C:
			pending = false
			if err := w.sync(); err != nil {
				w.log.Warn("watching config files", "err", err)
			}
			onChange()
		}
	}
}

// Close stops watching. It is safe to call more than once, and Run calls it.
func (w *Watcher) Close() error {
	var err error
	w.closeOnce.Do(func() { err = w.fsw.Close() })
	return err
}

// relevant reports whether an event may change what Load reads.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod { // only mode or times: editors and indexers do this all day
		return false
	}
	filter, ok := w.watched[filepath.Dir(ev.Name)]
	if !ok {
		return false
	}
	name := filepath.Base(ev.Name)
	if strings.HasPrefix(name, "..") {
		return true // the atomic writer of mounted volumes: ..data, ..2026_11_23_...
	}
	if filter.all {
		return !strings.HasPrefix(name, ".") // not editor swap files; Load skips them too
	}
	return filter.names[name]
}

// sync brings the watched folders in line with what the paths hold now.
func (w *Watcher) sync() error {
	want := watchTargets(w.paths)
	var errs []error
	for dir, filter := range want {
		if _, ok := w.watched[dir]; !ok {
			if err := w.fsw.Add(dir); err != nil {
				errs = append(errs, fmt.Errorf("watch %s: %w", dir, err))
				continue
			}
			w.log.Debug("watching folder", "folder", dir)
		}
		w.watched[dir] = filter
	}
	for dir := range w.watched {
		if _, ok := want[dir]; !ok {
			// A folder that was removed has lost its watch already.
			_ = w.fsw.Remove(dir)
			delete(w.watched, dir)
		}
	}
	return errors.Join(errs...)
}

// watchTargets returns the folders to watch for paths, by absolute name, with
// what matters in each.
func watchTargets(paths []string) map[string]dirFilter {
	want := map[string]dirFilter{}
	addName := func(file string) {
		dir, name := filepath.Split(file)
		dir = filepath.Clean(dir)
		f := want[dir]
		if f.all {
			return
		}
		if f.names == nil {
			f.names = map[string]bool{}
		}
		f.names[name] = true
		want[dir] = f
	}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
			var walk walker
			walk.walk(abs)
			for _, dir := range walk.dirs {
				want[dir] = dirFilter{all: true}
			}
			continue
		}
		// A file, or nothing yet: watch the parent for its name.
		addName(abs)
		if target, err := filepath.EvalSymlinks(abs); err == nil && target != abs {
			addName(target)
		}
	}
	return want
}
