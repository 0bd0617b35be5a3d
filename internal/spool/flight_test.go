package spool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
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

// TestLastByteHeldUntilVerified: readers get every byte but the last while the
// download runs, the last once it finishes without error, and an error otherwise.
func TestLastByteHeldUntilVerified(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  error
	}{{"verified", nil}, {"corrupt", errors.New("digest mismatch")}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFlight(t)
			data := bytes.Repeat([]byte("0123456789"), 1000)
			const readers = 4
			var wg sync.WaitGroup
			got := make([][]byte, readers)
			errs := make([]error, readers)
			for i := range readers {
				f.Acquire()
				st := f.NewStream()
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer st.Close()
					got[i], errs[i] = io.ReadAll(st.Reader(context.Background(), 0, -1))
				}()
			}
			f.Start(int64(len(data)))
			if _, err := f.Write(data); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // readers caught up, waiting for the last byte
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

// TestRangeReader reads a byte range while it arrives.
func TestRangeReader(t *testing.T) {
	f := newTestFlight(t)
	f.Acquire()
	st := f.NewStream()
	defer st.Close()
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(st.Reader(context.Background(), 3, 4))
		done <- b
	}()
	f.Start(10)
	_, _ = f.Write([]byte("01234"))
	_, _ = f.Write([]byte("56789"))
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
