// Package loadtest sends requests from a few goroutines while a test changes
// something underneath them (keys rotated, a replica stopped), and counts what
// failed. Tests of several packages use it; it is for tests only.
package loadtest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Load is a running load; Start begins one, Stop ends it.
type Load struct {
	sent, failed atomic.Int64
	failures     sync.Map // failure text -> time first seen
	stop         chan struct{}
	stopOnce     sync.Once
	wg           sync.WaitGroup
}

// Start runs workers goroutines; each calls request(worker, i) with i = worker,
// worker+1, ... until Stop. A non-nil error is a failed request; its text says
// what went wrong (equal texts are reported once, with when they first came).
func Start(workers int, request func(worker, i int) error) *Load {
	l := &Load{stop: make(chan struct{})}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				err := request(w, i)
				l.sent.Add(1)
				if err != nil {
					l.failed.Add(1)
					l.failures.LoadOrStore(err.Error(), time.Now())
				}
			}
		}()
	}
	return l
}

// Stop ends the load and waits for the requests under way. It may be called
// more than once.
func (l *Load) Stop() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// Sent is the number of requests made so far.
func (l *Load) Sent() int64 { return l.sent.Load() }

// Failed is the number of requests that failed so far.
func (l *Load) Failed() int64 { return l.failed.Load() }

// Failures lists each kind of failure with the time it first came, oldest first.
func (l *Load) Failures() string {
	type seen struct {
		text string
		at   time.Time
	}
	var all []seen
	l.failures.Range(func(k, v any) bool {
		all = append(all, seen{k.(string), v.(time.Time)})
		return true
	})
	slices.SortFunc(all, func(a, b seen) int { return a.at.Compare(b.at) })
	parts := make([]string, len(all))
	for i, s := range all {
		parts[i] = fmt.Sprintf("%s (first at %s)", s.text, s.at.Format("15:04:05.000"))
	}
	return strings.Join(parts, "; ")
}
