package filesource

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// changeTimeout is how long a test waits for onChange. Changes are reported
// within the debounce time; the margin is for slow, shared CI machines.
const changeTimeout = 2 * time.Second

// startWatcher runs a Watcher on paths and returns a channel that receives a
// value for each onChange call.
func startWatcher(t *testing.T, paths []string) <-chan struct{} {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := NewWatcher(paths, 50*time.Millisecond, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	changes := make(chan struct{}, 16)
	go func() {
		defer close(done)
		w.Run(ctx, func() { changes <- struct{}{} })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return changes
}

// waitChange fails the test unless onChange is called within changeTimeout.
func waitChange(t *testing.T, changes <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-changes:
	case <-time.After(changeTimeout):
		t.Fatalf("no onChange within %v after %s", changeTimeout, what)
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// swapData does what the kubelet does to update a mounted volume: write the new
// data to a new timestamped folder, point "..data_tmp" at it, rename that over
// "..data", and remove the old folder.
func swapData(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	writeFiles(t, filepath.Join(dir, "..2026_11_24"), files)
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("..2026_11_24", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..2026_11_23")); err != nil {
		t.Fatal(err)
	}
}

func TestWatcher(t *testing.T) {
	tests := []struct {
		name string
		// setup lays out dir and returns the paths to watch.
		setup func(t *testing.T, dir string) []string
		// change changes the files; the watcher must call onChange after it.
		change func(t *testing.T, dir string)
		// wantPolicy, when set, is the policy Load must find after the change.
		wantPolicy string
	}{
		{
			name: "file written in place",
			setup: func(t *testing.T, dir string) []string {
				mustWrite(t, filepath.Join(dir, "p.yaml"), policy("x", "old"))
				return []string{filepath.Join(dir, "p.yaml")}
			},
			change: func(t *testing.T, dir string) {
				f, err := os.OpenFile(filepath.Join(dir, "p.yaml"), os.O_WRONLY|os.O_TRUNC, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteString(policy("x", "new")); err != nil {
					t.Fatal(err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
			},
			wantPolicy: "x/new",
		},
		{
			name: "file replaced by rename, as editors save",
			setup: func(t *testing.T, dir string) []string {
				mustWrite(t, filepath.Join(dir, "p.yaml"), policy("x", "old"))
				return []string{filepath.Join(dir, "p.yaml")}
			},
			change: func(t *testing.T, dir string) {
				tmp := filepath.Join(dir, ".p.yaml.tmp")
				mustWrite(t, tmp, policy("x", "new"))
				if err := os.Rename(tmp, filepath.Join(dir, "p.yaml")); err != nil {
					t.Fatal(err)
				}
			},
			wantPolicy: "x/new",
		},
		{
			name: "new file in a watched folder",
			setup: func(t *testing.T, dir string) []string {
				mustWrite(t, filepath.Join(dir, "a.yaml"), policy("x", "a"))
				return []string{dir}
			},
			change: func(t *testing.T, dir string) {
				mustWrite(t, filepath.Join(dir, "b.yaml"), policy("x", "b"))
			},
		},
		{
			name: "file removed from a watched subfolder",
			setup: func(t *testing.T, dir string) []string {
				writeFiles(t, dir, map[string]string{"sub/a.yaml": policy("x", "a"), "b.yaml": policy("x", "b")})
				return []string{dir}
			},
			change: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "sub", "a.yaml")); err != nil {
					t.Fatal(err)
				}
			},
			wantPolicy: "x/b",
		},
		{
			name: "file given as a path is created later",
			setup: func(t *testing.T, dir string) []string {
				return []string{filepath.Join(dir, "later.yaml")}
			},
			change: func(t *testing.T, dir string) {
				mustWrite(t, filepath.Join(dir, "later.yaml"), policy("x", "later"))
			},
			wantPolicy: "x/later",
		},
		{
			name: "..data symlink swap, volume folder given",
			setup: func(t *testing.T, dir string) []string {
				mountedVolume(t, dir, map[string]string{"policy.yaml": policy("x", "old")})
				return []string{dir}
			},
			change: func(t *testing.T, dir string) {
				swapData(t, dir, map[string]string{"policy.yaml": policy("x", "new")})
			},
			wantPolicy: "x/new",
		},
		{
			name: "..data symlink swap, file in the volume given",
			setup: func(t *testing.T, dir string) []string {
				mountedVolume(t, dir, map[string]string{"policy.yaml": policy("x", "old")})
				return []string{filepath.Join(dir, "policy.yaml")}
			},
			change: func(t *testing.T, dir string) {
				swapData(t, dir, map[string]string{"policy.yaml": policy("x", "new")})
			},
			wantPolicy: "x/new",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			paths := tt.setup(t, dir)
			changes := startWatcher(t, paths)

			tt.change(t, dir)
			waitChange(t, changes, tt.name)

			if tt.wantPolicy != "" {
				b, problems := Load(paths)
				if len(problems) > 0 {
					t.Fatalf("problems after the change: %v", problems)
				}
				if len(b.Policies) != 1 || b.Policies[0].Namespace+"/"+b.Policies[0].Name != tt.wantPolicy {
					t.Errorf("after the change Load found %d policies, want only %s", len(b.Policies), tt.wantPolicy)
				}
			}
		})
	}
}

// TestWatcherFollowsNewFolders checks that the watched set is brought up to date:
// a file in a subfolder created after the watcher started is noticed.
func TestWatcherFollowsNewFolders(t *testing.T) {
	dir := t.TempDir()
	changes := startWatcher(t, []string{dir})

	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changes, "mkdir sub")

	mustWrite(t, filepath.Join(sub, "p.yaml"), policy("x", "p"))
	waitChange(t, changes, "writing sub/p.yaml")
}

// TestWatcherSecondSwap checks that a mounted volume given as a file keeps
// being watched after its target folder was replaced.
func TestWatcherSecondSwap(t *testing.T) {
	dir := t.TempDir()
	mountedVolume(t, dir, map[string]string{"policy.yaml": policy("x", "old")})
	changes := startWatcher(t, []string{filepath.Join(dir, "policy.yaml")})

	swapData(t, dir, map[string]string{"policy.yaml": policy("x", "new")})
	waitChange(t, changes, "first swap")

	// An in-place write to the new target (not what the kubelet does, but what
	// a person debugging a node might do) is seen through the re-synced watch.
	mustWrite(t, filepath.Join(dir, "..2026_11_24", "policy.yaml"), policy("x", "newer"))
	waitChange(t, changes, "writing the new target")
}

func TestNewWatcherMissingFolder(t *testing.T) {
	_, err := NewWatcher([]string{filepath.Join(t.TempDir(), "no", "such", "file.yaml")}, 0, nil)
	if err == nil {
		t.Fatal("NewWatcher on a path whose folder does not exist: no error")
	}
}
