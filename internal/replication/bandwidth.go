package replication

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// limiter is a token bucket of bytes per second shared by every stream of one run
// (one second of burst).
type limiter struct {
	rate   float64
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newLimiter(bytesPerSecond int64) *limiter {
	return &limiter{rate: float64(bytesPerSecond), tokens: float64(bytesPerSecond), last: time.Now()}
}

// wait takes n bytes from the bucket, sleeping until they are there (or ctx ends).
func (l *limiter) wait(ctx context.Context, n int) error {
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(l.rate, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens -= float64(n)
	var d time.Duration
	if l.tokens < 0 {
		d = time.Duration(-l.tokens / l.rate * float64(time.Second))
	}
	l.mu.Unlock()
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// limitedReader paces reads through the limiter, in pieces of at most 32 KiB.
type limitedReader struct {
	ctx context.Context
	r   io.ReadCloser
	l   *limiter
}

func (lr *limitedReader) Read(p []byte) (int, error) {
	if len(p) > 32<<10 {
		p = p[:32<<10]
	}
	n, err := lr.r.Read(p)
	if n > 0 {
		if werr := lr.l.wait(lr.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

func (lr *limitedReader) Close() error { return lr.r.Close() }

// limitTransport paces the bytes exchanged with host (request bodies sent there,
// response bodies read from there); this registry's own side is not limited.
type limitTransport struct {
	next http.RoundTripper
	host string
	l    *limiter
}

func (t *limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != t.host {
		return t.next.RoundTrip(r)
	}
	if r.Body != nil && r.Body != http.NoBody {
		r = r.Clone(r.Context())
		r.Body = &limitedReader{ctx: r.Context(), r: r.Body, l: t.l}
	}
	res, err := t.next.RoundTrip(r)
	if err == nil && res.Body != nil {
		res.Body = &limitedReader{ctx: r.Context(), r: res.Body, l: t.l}
	}
	return res, err
}
