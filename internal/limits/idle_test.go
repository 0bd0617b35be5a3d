package limits

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/errcode"
)

// fakeConn plays a connection with a read deadline: each step delivers bytes after a
// delay, and a step that would come after the deadline fails as a real read would.
type fakeConn struct {
	c        *clock
	steps    []step
	deadline time.Time
	sets     int
}

type step struct {
	after time.Duration
	data  string
}

func (f *fakeConn) SetReadDeadline(t time.Time) error { f.deadline = t; f.sets++; return nil }

func (f *fakeConn) Read(p []byte) (int, error) {
	if len(f.steps) == 0 {
		return 0, io.EOF
	}
	s := f.steps[0]
	if at := f.c.t.Add(s.after); !f.deadline.IsZero() && at.After(f.deadline) {
		f.c.t = f.deadline
		return 0, os.ErrDeadlineExceeded
	}
	f.c.add(s.after)
	f.steps = f.steps[1:]
	return copy(p, s.data), nil
}

func (f *fakeConn) Close() error { return nil }

func TestIdleBody(t *testing.T) {
	many := func(n int, every time.Duration) []step {
		out := make([]step, n)
		for i := range out {
			out[i] = step{every, "x"}
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		idle    time.Duration
		steps   []step
		wantCut bool
		wantN   int
	}{
		{"steady upload longer than the idle time is never cut", 3 * time.Second, many(100, 500*time.Millisecond), false, 100},
		{"one byte every 2s with 3s idle is kept", 3 * time.Second, many(5, 2*time.Second), false, 5},
		{"a pause past the idle time cuts", 3 * time.Second, append(many(3, time.Second), step{4 * time.Second, "x"}), true, 3},
		{"silence from the start cuts", time.Second, []step{{2 * time.Second, "x"}}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			conn := &fakeConn{c: c, steps: tc.steps}
			b := newIdleBody(conn, conn, tc.idle)
			b.now = c.now
			got, err := io.ReadAll(b)
			if len(got) != tc.wantN {
				t.Fatalf("read %d bytes, want %d", len(got), tc.wantN)
			}
			if b.cut != tc.wantCut {
				t.Fatalf("cut %v, want %v (err %v)", b.cut, tc.wantCut, err)
			}
			if tc.wantCut {
				if !errors.Is(err, errcode.RequestTimeout) || !strings.Contains(err.Error(), "resume") {
					t.Fatalf("err %v, want REQUEST_TIMEOUT naming the resume", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !conn.deadline.IsZero() {
				t.Fatal("deadline left set after the body was read")
			}
			if conn.sets > tc.wantN+2 {
				t.Fatalf("deadline pushed %d times for %d reads", conn.sets, tc.wantN)
			}
		})
	}
}
