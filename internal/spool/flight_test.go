package spool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

func newTestFlight(t *testing.T) *Flight {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "spool-*")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(f.Name())
	return New(f)
}

// feeders are the two ways a download reaches a flight: a copy written to its spool, or
// an upload file the flight follows while the blob store writes it.
var feeders = []struct {
	name string
	feed func(t *testing.T, f *Flight) func(p []byte)
}{
	{"copy", func(t *testing.T, f *Flight) func([]byte) {
		return func(p []byte) {
			if _, err := f.Write(p); err != nil {
				t.Fatal(err)
			}
		}
	}},
	{"follow", func(t *testing.T, f *Flight) func([]byte) {
		up, err := os.CreateTemp(t.TempDir(), "upload-*")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { up.Close() })
		r, err := os.Open(up.Name())
		if err != nil {
			t.Fatal(err)
		}
		f.Follow(r)
		// The store may rename or delete its file: the followed descriptor reads on.
		if err := os.Remove(up.Name()); err != nil {
			t.Fatal(err)
		}
		return func(p []byte) {
			if _, err := up.Write(p); err != nil {
				t.Fatal(err)
			}
			f.Stored(int64(len(p)))
		}
	}},
}

// TestLastByteHeldUntilVerified: readers get every byte but the last while the
// download runs, the last once it finishes without error, and an error otherwise.
func TestLastByteHeldUntilVerified(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  error
	}{{"verified", nil}, {"corrupt", errors.New("digest mismatch")}} {
		for _, fd := range feeders {
			t.Run(tc.name+"/"+fd.name, func(t *testing.T) {
				f := newTestFlight(t)
				feed := fd.feed(t, f)
				data := bytes.Repeat([]byte("0123456789"), 1000)
				const readers = 4
				var wg, caughtUp sync.WaitGroup
				got := make([][]byte, readers)
				errs := make([]error, readers)
				for i := range readers {
					f.Acquire()
					st := f.NewStream()
					wg.Add(1)
					caughtUp.Add(1)
					go func() {
						defer wg.Done()
						defer st.Close()
						r := st.Reader(context.Background(), 0, -1)
						// All but the last byte arrive before the download is verified.
						head := make([]byte, len(data)-1)
						_, err := io.ReadFull(r, head)
						caughtUp.Done()
						if err != nil {
							errs[i] = err
							return
						}
						rest, err := io.ReadAll(r)
						got[i], errs[i] = append(head, rest...), err
					}()
				}
				f.Start(int64(len(data)))
				feed(data[:len(data)/2])
				feed(data[len(data)/2:])
				caughtUp.Wait()
				f.Finish(tc.end)
				wg.Wait()
				for i := range readers {
					switch {
					case tc.end == nil && (errs[i] != nil || !bytes.Equal(got[i], data)):
						t.Errorf("reader %d: %d bytes, %v", i, len(got[i]), errs[i])
					case tc.end != nil && (errs[i] == nil || len(got[i]) >= len(data)):
						t.Errorf("reader %d of a corrupt download: %d of %d bytes, %v", i, len(got[i]), len(data), errs[i])
					}
				}
			})
		}
	}
}

// TestRangeReader reads a byte range while it arrives.
func TestRangeReader(t *testing.T) {
	for _, fd := range feeders {
		t.Run(fd.name, func(t *testing.T) { testRangeReader(t, fd.feed) })
	}
}

func testRangeReader(t *testing.T, feeder func(*testing.T, *Flight) func([]byte)) {
	f := newTestFlight(t)
	feed := feeder(t, f)
	f.Acquire()
	st := f.NewStream()
	defer st.Close()
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(st.Reader(context.Background(), 3, 4))
		done <- b
	}()
	f.Start(10)
	feed([]byte("01234"))
	feed([]byte("56789"))
	f.Finish(nil)
	if b := <-done; string(b) != "3456" {
		t.Errorf("range = %q, want 3456", b)
	}
	if st.Size() != 10 {
		t.Errorf("size = %d", st.Size())
	}
}

// TestReaderContext: a reader waiting for bytes gives up with its context.
func TestReaderContext(t *testing.T) {
	f := newTestFlight(t)
	f.Acquire()
	st := f.NewStream()
	defer st.Close()
	f.Start(10)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := io.ReadAll(st.Reader(ctx, 0, -1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the deadline", err)
	}
	f.Finish(nil)
}

// TestWriteTo serves ranges of a flight over HTTP as net/http does with io.Copy, which
// takes the reader's WriteTo (sendfile from the reader's own descriptor on TCP) while
// the bytes arrive: every range is exact, and a failed download cuts the body short.
func TestWriteTo(t *testing.T) {
	data := make([]byte, 3<<20+11)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	for _, fd := range feeders {
		for _, tc := range []struct {
			name       string
			off, n     int64
			fail       bool
			wantStatus int
		}{
			{"whole", 0, -1, false, 0},
			{"range", 1<<20 + 3, 1 << 20, false, 0},
			{"tail", int64(len(data)) - 5, 5, false, 0},
			{"failed download", 0, -1, true, 0},
		} {
			t.Run(fd.name+"/"+tc.name, func(t *testing.T) {
				f := newTestFlight(t)
				feed := fd.feed(t, f)
				f.Start(int64(len(data)))
				n := tc.n
				if n < 0 {
					n = int64(len(data)) - tc.off
				}
				f.Acquire() // the handler's stream, joining before the download ends
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					st := f.NewStream()
					defer st.Close()
					w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
					if _, err := io.Copy(w, st.Reader(r.Context(), tc.off, tc.n)); err != nil {
						panic(http.ErrAbortHandler)
					}
				}))
				defer srv.Close()
				go func() {
					for off := 0; off < len(data); off += 100 << 10 {
						feed(data[off:min(off+100<<10, len(data))])
					}
					if tc.fail {
						f.Finish(errors.New("digest mismatch"))
					} else {
						f.Finish(nil)
					}
				}()
				resp, err := http.Get(srv.URL)
				if err != nil && tc.fail {
					return // cut short before the headers went out
				}
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				got, err := io.ReadAll(resp.Body)
				if tc.fail {
					if err == nil || len(got) >= len(data) {
						t.Fatalf("a failed download delivered %d of %d bytes, err %v", len(got), len(data), err)
					}
					return
				}
				if err != nil || !bytes.Equal(got, data[tc.off:tc.off+n]) {
					t.Fatalf("got %d bytes (%v), want bytes %d+%d", len(got), err, tc.off, n)
				}
			})
		}
	}
}
