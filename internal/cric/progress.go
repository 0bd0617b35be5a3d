package cric

// Progress: on a terminal, mpb bars (one per blob in flight and a total, with rates);
// elsewhere, one plain line per blob and a periodic total, so CI logs stay readable; with
// -q, nothing. Blob readers are counted here, which is also where a blob's size is
// checked against its descriptor.

import (
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

type progressMode int

const (
	progressNone progressMode = iota
	progressPlain
	progressBars
)

// progress reports one operation (pull, push, copy, save, load).
type progress struct {
	mode  progressMode
	w     io.Writer
	verb  string // past tense: "pulled", "pushed", ...
	start time.Time

	mp       *mpb.Progress
	totalBar *mpb.Bar

	total    atomic.Int64 // bytes expected
	done     atomic.Int64 // bytes finished, transferred or already present
	moved    atomic.Int64 // bytes actually transferred
	nMoved   atomic.Int64 // blobs transferred
	nSkipped atomic.Int64 // blobs already present (or mounted)

	mu     sync.Mutex // serialises plain lines
	stop   chan struct{}
	closed sync.Once
}

func (c *Client) progressMode() progressMode {
	if c.opts.Quiet {
		return progressNone
	}
	switch c.opts.Progress {
	case "none":
		return progressNone
	case "plain":
		return progressPlain
	case "bars":
		return progressBars
	}
	if f, ok := c.opts.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return progressBars
	}
	return progressPlain
}

// newProgress starts reporting an operation expected to move total bytes.
func (c *Client) newProgress(verb string, total int64) *progress {
	p := &progress{mode: c.progressMode(), w: c.opts.Stderr, verb: verb, start: time.Now(), stop: make(chan struct{})}
	p.total.Store(total)
	switch p.mode {
	case progressBars:
		opts := []mpb.ContainerOption{mpb.WithOutput(p.w), mpb.WithRefreshRate(150 * time.Millisecond)}
		if f, ok := p.w.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
			// --progress=bars without a terminal (a log, a test): fixed width.
			opts = append(opts, mpb.WithAutoRefresh(), mpb.WithWidth(110))
		}
		p.mp = mpb.New(opts...)
		p.totalBar = p.mp.New(total, mpb.BarStyle().Lbound("[").Filler("=").Tip(">").Padding(" ").Rbound("]"),
			mpb.BarPriority(math.MaxInt),
			mpb.PrependDecorators(
				decor.Name("total", decor.WC{C: decor.DindentRight | decor.DextraSpace, W: 14}),
				decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WC{W: 22}),
			),
			mpb.AppendDecorators(
				decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WC{W: 12}),
				decor.Name(" "),
				decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO), "done"),
			),
		)
	case progressPlain:
		go p.ticker()
	}
	return p
}

// ticker prints the total every few seconds in plain mode, for long transfers.
func (p *progress) ticker() {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	last := int64(-1)
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			done, total := p.done.Load(), p.total.Load()
			if done == last || total == 0 {
				continue
			}
			last = done
			p.linef("%s %s / %s (%d%%), %s/s", "progress", humanBytes(done), humanBytes(total), done*100/total, humanBytes(p.rate()))
		}
	}
}

func (p *progress) rate() int64 {
	s := time.Since(p.start).Seconds()
	if s <= 0 {
		return 0
	}
	return int64(float64(p.moved.Load()) / s)
}

func (p *progress) linef(format string, args ...any) {
	if p.mode == progressNone {
		return
	}
	line := fmt.Sprintf(format, args...) + "\n"
	if p.mp != nil {
		_, _ = p.mp.Write([]byte(line))
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.WriteString(p.w, line)
}

// blob starts tracking one blob.
func (p *progress) blob(d v1.Descriptor) *blobProgress {
	return &blobProgress{p: p, d: d}
}

// finish stops reporting and prints the summary line.
func (p *progress) finish(err error) {
	p.closed.Do(func() {
		close(p.stop)
		if p.mp != nil {
			if err == nil {
				p.totalBar.SetTotal(-1, true)
			} else {
				p.totalBar.Abort(false)
			}
			p.mp.Wait()
		}
		if err == nil && p.mode != progressNone {
			p.mp = nil
			p.linef("%s", p.summary())
		}
	})
}

func (p *progress) summary() string {
	el := time.Since(p.start)
	s := fmt.Sprintf("%s %d blob(s), %s in %s (%s/s)", p.verb, p.nMoved.Load(), humanBytes(p.moved.Load()),
		el.Round(time.Millisecond), humanBytes(p.rate()))
	if n := p.nSkipped.Load(); n > 0 {
		s += fmt.Sprintf("; %d already present", n)
	}
	return s
}

// blobProgress follows one blob through possibly several attempts.
type blobProgress struct {
	p      *progress
	d      v1.Descriptor
	bar    *mpb.Bar
	read   atomic.Int64 // bytes of the current attempt
	opened atomic.Bool
	start  time.Time
}

// reader counts an attempt's bytes; a new attempt (a retry) starts again from zero.
// At EOF the byte count must equal the descriptor's size.
func (b *blobProgress) reader(rc io.ReadCloser) io.ReadCloser {
	if b.opened.Swap(true) {
		prev := b.read.Swap(0)
		b.p.done.Add(-prev)
		b.p.moved.Add(-prev)
		if b.bar != nil {
			b.totalBarAdd(-prev)
			b.bar.SetCurrent(0)
		}
	} else {
		b.start = time.Now()
		if b.p.mp != nil {
			b.bar = b.p.mp.New(b.d.Size, mpb.BarStyle().Lbound("[").Filler("=").Tip(">").Padding(" ").Rbound("]"),
				mpb.BarRemoveOnComplete(),
				mpb.PrependDecorators(
					decor.Name(shortDigest(b.d.Digest), decor.WC{C: decor.DindentRight | decor.DextraSpace, W: 14}),
					decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WC{W: 22}),
				),
				mpb.AppendDecorators(decor.Any(func(st decor.Statistics) string {
					return humanBytes(int64(float64(st.Current)/max(time.Since(b.start).Seconds(), 1e-3))) + "/s"
				}, decor.WC{W: 12})),
			)
		}
	}
	return &countingReader{rc: rc, b: b}
}

func (b *blobProgress) totalBarAdd(n int64) {
	if b.p.totalBar != nil {
		b.p.totalBar.IncrInt64(n)
	}
}

// finish records the outcome; a blob whose reader was never opened was already present
// at the destination (or mounted there).
func (b *blobProgress) finish(err error) {
	if err != nil {
		if b.bar != nil {
			b.bar.Abort(true)
		}
		return
	}
	if !b.opened.Load() {
		b.p.nSkipped.Add(1)
		b.p.done.Add(b.d.Size)
		b.totalBarAdd(b.d.Size)
		if b.p.mode == progressPlain {
			b.p.linef("present %s  %s (skipped or mounted)", shortDigest(b.d.Digest), humanBytes(b.d.Size))
		}
		return
	}
	b.p.nMoved.Add(1)
	if b.bar != nil {
		b.bar.SetTotal(-1, true)
	}
	if b.p.mode == progressPlain {
		el := time.Since(b.start)
		rate := int64(0)
		if el > 0 {
			rate = int64(float64(b.d.Size) / el.Seconds())
		}
		b.p.linef("%-7s %s  %s in %s (%s/s)", verbShort(b.p.verb), shortDigest(b.d.Digest), humanBytes(b.d.Size),
			el.Round(time.Millisecond), humanBytes(rate))
	}
}

func verbShort(v string) string {
	if len(v) > 7 {
		return v[:7]
	}
	return v
}

type countingReader struct {
	rc io.ReadCloser
	b  *blobProgress
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if n > 0 {
		r.b.read.Add(int64(n))
		r.b.p.done.Add(int64(n))
		r.b.p.moved.Add(int64(n))
		if r.b.bar != nil {
			r.b.bar.IncrInt64(int64(n))
			r.b.totalBarAdd(int64(n))
		}
	}
	if err == io.EOF && r.b.d.Size > 0 && r.b.read.Load() != r.b.d.Size {
		return n, invalidErrorf("blob %s: got %d bytes, descriptor says %d", r.b.d.Digest, r.b.read.Load(), r.b.d.Size)
	}
	return n, err
}

func (r *countingReader) Close() error { return r.rc.Close() }

func shortDigest(h v1.Hash) string {
	if len(h.Hex) > 12 {
		return h.Algorithm + ":" + h.Hex[:12]
	}
	return h.String()
}
