// Package progress shows the progress of long work on stderr: a count, a
// rate and the time left, redrawn at most a few times a second. It stays
// quiet when disabled (stderr not a terminal, or progress: off).
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Enabled reports whether progress should be drawn for mode "auto", "on"
// or "off": auto means stderr is a character device (a terminal).
func Enabled(mode string) bool {
	switch mode {
	case "on":
		return true
	case "off":
		return false
	}
	fi, err := os.Stderr.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Bar reports progress of a task of Total units (0 if unknown).
type Bar struct {
	mu      sync.Mutex
	w       io.Writer
	label   string
	unit    string
	total   int64
	done    int64
	extra   string
	start   time.Time
	last    time.Time
	enabled bool
}

// New returns a Bar writing to w when enabled, else a silent one.
func New(w io.Writer, enabled bool, label, unit string, total int64) *Bar {
	now := time.Now()
	return &Bar{w: w, label: label, unit: unit, total: total, start: now, enabled: enabled}
}

// Add records n more units done and redraws at most every 200 ms.
func (b *Bar) Add(n int64) { b.update(n, "") }

// AddNote records n units and sets a short note (e.g. "loss 2.31").
func (b *Bar) AddNote(n int64, note string) { b.update(n, note) }

func (b *Bar) update(n int64, note string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if note != "" {
		b.extra = note
	}
	if !b.enabled {
		return
	}
	now := time.Now()
	if now.Sub(b.last) < 200*time.Millisecond && (b.total == 0 || b.done < b.total) {
		return
	}
	b.last = now
	b.draw(now, "\r")
}

func (b *Bar) draw(now time.Time, prefix string) {
	el := now.Sub(b.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(b.done) / el
	}
	s := fmt.Sprintf("%s%s: %d", prefix, b.label, b.done)
	if b.total > 0 {
		s += fmt.Sprintf("/%d (%.1f%%)", b.total, 100*float64(b.done)/float64(b.total))
	}
	s += fmt.Sprintf(" %s, %.0f %s/s", b.unit, rate, b.unit)
	if b.total > 0 && rate > 0 && b.done < b.total {
		left := time.Duration(float64(b.total-b.done) / rate * float64(time.Second))
		s += fmt.Sprintf(", %s left", left.Round(time.Second))
	}
	if b.extra != "" {
		s += ", " + b.extra
	}
	fmt.Fprintf(b.w, "%s\x1b[K", s)
}

// Done draws the final state and ends the line.
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.enabled {
		return
	}
	b.draw(time.Now(), "\r")
	fmt.Fprintln(b.w)
}
