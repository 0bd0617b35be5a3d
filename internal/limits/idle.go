package limits

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/berth-registry/berth/internal/errcode"
)

// deadliner is the part of http.ResponseController an idle body needs.
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// idleBody cuts a body that delivers nothing for idle: the connection's read deadline
// is pushed out as bytes arrive, so only silence ends it, never a long steady upload.
type idleBody struct {
	rc    io.ReadCloser
	dl    deadliner
	idle  time.Duration
	now   func() time.Time
	set   time.Time // when the deadline was last pushed out
	cut   bool
	unset bool // deadline cleared at EOF
}

func newIdleBody(rc io.ReadCloser, dl deadliner, idle time.Duration) *idleBody {
	return &idleBody{rc: rc, dl: dl, idle: idle, now: time.Now}
}

func (b *idleBody) Read(p []byte) (int, error) {
	// Pushing the deadline is cheap but not free; doing it at most ten times per idle
	// period keeps the real allowance between 0.9 and 1 times idle.
	if now := b.now(); now.Sub(b.set) >= b.idle/10 {
		if err := b.dl.SetReadDeadline(now.Add(b.idle)); err != nil {
			// No deadline support (a test recorder): read without one.
			return b.rc.Read(p)
		}
		b.set = now
	}
	n, err := b.rc.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.clear()
	case isTimeout(err):
		b.cut = true
		return n, b.timeoutError()
	}
	return n, err
}

// clear lifts the deadline once the body is read: the server's background read that
// watches for a client hanging up would otherwise hit it while the handler is still
// committing (hashing, storing) and cancel the request.
func (b *idleBody) clear() {
	if !b.unset && !b.set.IsZero() {
		b.unset = true
		_ = b.dl.SetReadDeadline(time.Time{})
	}
}

func (b *idleBody) Close() error { return b.rc.Close() }

func (b *idleBody) timeoutError() error {
	return errcode.RequestTimeout.New("upload body idle for " + strconv.Itoa(int(b.idle/time.Second)) +
		"s (throttle.bodyIdleTimeout): cut; bytes acknowledged so far are kept, resume with GET on the upload URL and PATCH")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// BodyError is err, or the idle-timeout refusal when r's body was cut for idling:
// whatever layer saw the failed read, the client and the operator learn why.
func BodyError(r *http.Request, err error) error {
	if st := stateOf(r); st != nil && st.body != nil && st.body.cut {
		st.l.o.Refusals.Refused(refusal{limit: "body_idle", client: "a:" + st.addr, remote: st.addr})
		return st.body.timeoutError()
	}
	return err
}
