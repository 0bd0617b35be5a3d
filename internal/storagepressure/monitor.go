// Package storagepressure keeps Berth writing only while storage has room. A Monitor
// measures free space on the blob store's file system (statfs, or any injected source)
// and the bytes the database records against an optional byte budget; below the
// watermark or past the budget, new data (uploads, manifest pushes) is refused with
// errcode.StorageFull while reads, deletes and GC go on. It re-measures on a short
// interval and on refused requests, so writing resumes by itself once space returns,
// and it keeps a reserve file that is released when the disk fills so the database can
// still commit the deletes that free space.
package storagepressure

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/internal/errcode"
)

// FreeSpace reports the bytes available to Berth and the size of the file system.
type FreeSpace func() (free, total int64, err error)

// UsedBytes reports the bytes stored by the database's account (blobs and uploads).
type UsedBytes func(ctx context.Context) (int64, error)

// Options configure a Monitor. The zero value measures nothing and refuses nothing.
type Options struct {
	// Free measures the blob store's file system; nil (object storage) means no watermark.
	Free FreeSpace
	// MinFreeBytes and MinFreePercent (of the file system's size) set the watermark: the
	// larger of the two is the free space below which writes are refused.
	MinFreeBytes   int64
	MinFreePercent float64
	// Used and MaxBytes set a byte budget on any driver: at MaxBytes stored, writes are
	// refused. MaxBytes 0 means no budget.
	Used     UsedBytes
	MaxBytes int64
	// ReservePath and ReserveBytes keep a reserve file (see reserve.go); 0 bytes: none.
	ReservePath  string
	ReserveBytes int64
	// Interval between measurements in Run (default 1s).
	Interval time.Duration
	// Now is the clock (tests).
	Now func() time.Time
	Log *slog.Logger
}

// Status is the last measurement.
type Status struct {
	// Pressured: new data is refused; Reason names why.
	Pressured bool
	Reason    string
	// Free and Total are the file system's bytes (-1: not measured); Watermark is the
	// free space writes need.
	Free, Total, Watermark int64
	// Used and MaxBytes are the budget's (MaxBytes 0: no budget).
	Used, MaxBytes int64
	// ReserveHeld: the reserve file is in place (not released).
	ReserveHeld bool
	// Refusals counts refused requests and writes since the start.
	Refusals uint64
	// At is when it was measured.
	At time.Time
}

// recheck is how stale a measurement may be before a refusal is confirmed by measuring
// again: a flood of refused requests costs one statfs per recheck, and a freed disk is
// noticed within it.
const recheck = 50 * time.Millisecond

// Monitor tracks storage pressure. It is safe for concurrent use.
type Monitor struct {
	opts    Options
	reserve *reserve

	measureMu sync.Mutex // one measurement at a time
	mu        sync.Mutex
	snap      Status
	// written counts bytes written through Writer since the last measurement, so a
	// stream is cut at the watermark without a statfs per write.
	written  atomic.Int64
	refusals atomic.Uint64
	wake     chan struct{}
}

// New returns a monitor and takes its first measurement (creating the reserve file when
// there is room for it).
func New(ctx context.Context, opts Options) *Monitor {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{opts: opts, wake: make(chan struct{}, 1)}
	if opts.Free != nil && opts.ReserveBytes > 0 && opts.ReservePath != "" {
		m.reserve = newReserve(opts.ReservePath, opts.ReserveBytes)
	}
	m.snap = Status{Free: -1, Total: -1}
	m.Measure(ctx)
	return m
}

// Enabled reports whether anything is measured at all.
func (m *Monitor) Enabled() bool { return m.opts.Free != nil || m.opts.MaxBytes > 0 }

// Run measures on the interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Measure(ctx)
		}
	}
}

// Wake is signalled when pressure begins, so the upload purge can give back held bytes
// at once.
func (m *Monitor) Wake() <-chan struct{} { return m.wake }

// Status returns the last measurement.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	s := m.snap
	m.mu.Unlock()
	s.Refusals = m.refusals.Load()
	return s
}

// Measure measures now, releases or re-creates the reserve, logs a change of state and
// returns the result.
func (m *Monitor) Measure(ctx context.Context) Status {
	m.measureMu.Lock()
	defer m.measureMu.Unlock()
	prev := m.Status()
	written := m.written.Load()
	s := Status{Free: -1, Total: -1, MaxBytes: m.opts.MaxBytes, At: m.opts.Now()}
	if m.opts.Free != nil {
		free, total, err := m.opts.Free()
		if err != nil {
			m.opts.Log.Warn("storage pressure: measure free space", "err", err)
			free, total = prev.Free, prev.Total
		}
		s.Free, s.Total = free, total
		s.Watermark = watermark(m.opts.MinFreeBytes, m.opts.MinFreePercent, total)
		if m.reserve != nil && free >= 0 {
			m.reserve.adjust(&s, m.opts.Log)
		}
	}
	if m.opts.MaxBytes > 0 && m.opts.Used != nil {
		used, err := m.opts.Used(ctx)
		if err != nil {
			m.opts.Log.Warn("storage pressure: measure stored bytes", "err", err)
			used = prev.Used
		}
		s.Used = used
	}
	s.Pressured, s.Reason = judge(s, m.reserveMissing(s))
	m.written.Add(-written)
	m.mu.Lock()
	m.snap = s
	m.mu.Unlock()
	m.transition(prev, s)
	return s
}

func (m *Monitor) reserveMissing(s Status) int64 {
	if m.reserve == nil || s.ReserveHeld {
		return 0
	}
	return m.reserve.size
}

// watermark is the larger of the absolute and the relative minimum.
func watermark(minBytes int64, minPercent float64, total int64) int64 {
	w := minBytes
	if p := int64(minPercent / 100 * float64(total)); total > 0 && p > w {
		w = p
	}
	return w
}

// judge decides pressure. A released reserve still counts as used: releasing it gives
// the database room, not uploads, and must not end the pressure that caused it.
func judge(s Status, reserveMissing int64) (bool, string) {
	if s.Free >= 0 && s.Free-reserveMissing < s.Watermark {
		return true, fmt.Sprintf("storage pressure: %s free on the blob store's file system, below the %s watermark (storage.pressure); "+
			"uploads and manifest pushes are refused until space is freed, reads keep working", human(max(s.Free-reserveMissing, 0)), human(s.Watermark))
	}
	if s.MaxBytes > 0 && s.Used >= s.MaxBytes {
		return true, fmt.Sprintf("storage pressure: %s stored, the byte budget storage.pressure.maxBytes of %s is spent; "+
			"uploads and manifest pushes are refused until space is freed, reads keep working", human(s.Used), human(s.MaxBytes))
	}
	return false, ""
}

// crossed tells whether n more bytes than measured leave too little room. New data
// (write false) needs the watermark; a write of an upload admitted above it may go on
// down to half the watermark, so the state is visible (readiness, metrics) before an
// upload is cut, and an upload is cut before the disk is full.
func crossed(s Status, n, reserveMissing int64, write bool) bool {
	need := s.Watermark
	if write {
		need /= 2
	} else if s.Pressured {
		return true
	}
	if s.Free >= 0 && s.Free-reserveMissing-n < need {
		return true
	}
	return s.MaxBytes > 0 && s.Used+n >= s.MaxBytes
}

func (m *Monitor) transition(prev, s Status) {
	switch {
	case s.Pressured && !prev.Pressured:
		m.opts.Log.Warn("storage pressure: writes refused", "reason", s.Reason, "free", s.Free, "watermark", s.Watermark,
			"used", s.Used, "maxBytes", s.MaxBytes)
		m.nudge()
	case !s.Pressured && prev.Pressured:
		m.opts.Log.Info("storage pressure ended: writes accepted again", "free", s.Free, "watermark", s.Watermark,
			"used", s.Used, "refusedSoFar", m.refusals.Load())
	}
}

func (m *Monitor) nudge() {
	select {
	case m.wake <- struct{}{}:
	default: // one pending is enough
	}
}

// decide tells whether n more bytes must be refused: the cached measurement decides
// while it says there is room (with what was written since counted against it); a fresh
// one, when it says there is not, so a freed disk is noticed by the next request.
func (m *Monitor) decide(n int64, write bool) error {
	s := m.Status()
	est := m.written.Load() + n
	stale := m.opts.Now().Sub(s.At)
	if !crossed(s, est, m.reserveMissing(s), write) && stale < 3*m.opts.Interval {
		return nil
	}
	// A refusal the cached state did not foresee is confirmed (and recorded, for
	// readiness and metrics) by measuring; a flood of refusals after it measures at
	// most once per recheck.
	if stale >= recheck || !s.Pressured {
		s = m.Measure(context.Background())
		est = m.written.Load() + n
	}
	missing := m.reserveMissing(s)
	if !crossed(s, est, missing, write) {
		return nil
	}
	m.refusals.Add(1)
	reason := s.Reason
	if !s.Pressured || write {
		need := s.Watermark
		if write {
			need /= 2
		}
		_, reason = judge(Status{Free: s.Free - est, Watermark: need, Used: s.Used + est, MaxBytes: s.MaxBytes}, missing)
	}
	return errcode.StorageFull.New(reason)
}

// Admit returns the refusal while new data is refused, nil otherwise.
func (m *Monitor) Admit() error {
	if !m.Enabled() {
		return nil
	}
	return m.decide(0, false)
}

// Pressured measures now and reports whether space must still be freed.
func (m *Monitor) Pressured(ctx context.Context) bool {
	return m.Enabled() && m.Measure(ctx).Pressured
}

// Remeasure drops the cached measurement, so the next decision measures again: a write
// failed for lack of space, or a failed upload just gave its bytes back.
func (m *Monitor) Remeasure() {
	m.mu.Lock()
	m.snap.At = time.Time{}
	m.mu.Unlock()
}

// Writer wraps w so its writes count against the free space and the budget; a write
// that would cross the watermark fails with the refusal instead of filling the disk.
func (m *Monitor) Writer(w io.Writer) io.Writer {
	if !m.Enabled() {
		return w
	}
	return &writer{w: w, m: m}
}

type writer struct {
	w io.Writer
	m *Monitor
}

func (w *writer) Write(p []byte) (int, error) {
	if err := w.m.decide(int64(len(p)), true); err != nil {
		return 0, err
	}
	n, err := w.w.Write(p)
	w.m.written.Add(int64(n))
	return n, err
}

// human formats a byte count for messages.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
