package registry

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"sync"
	"testing"
	"testing/iotest"
)

type failAfter struct {
	r   io.Reader
	n   int64
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

func TestCopyHashed(t *testing.T) {
	big := make([]byte, 20<<20+12345)
	rand.Read(big)
	boom := errors.New("connection reset")
	tests := []struct {
		name    string
		src     io.Reader
		hint    int64
		wantN   int64
		wantErr error
		eager   bool
	}{
		{"empty", bytes.NewReader(nil), 0, 0, nil, false},
		{"small serial", bytes.NewReader(big[:1000]), 1000, 1000, nil, false},
		{"large pipelined", bytes.NewReader(big), int64(len(big)), int64(len(big)), nil, false},
		{"unknown size pipelined", bytes.NewReader(big), -1, int64(len(big)), nil, false},
		{"body fails midway", &failAfter{r: bytes.NewReader(big), n: 10<<20 + 7, err: boom}, int64(len(big)), 10<<20 + 7, boom, false},
		{"body ends early", &failAfter{r: bytes.NewReader(big), n: 3 << 20, err: io.ErrUnexpectedEOF}, int64(len(big)), 3 << 20, io.ErrUnexpectedEOF, false},
		{"eager, odd reads", iotest.HalfReader(bytes.NewReader(big)), int64(len(big)), int64(len(big)), nil, true},
		{"eager, one byte at a time", iotest.OneByteReader(bytes.NewReader(big[:300003])), -1, 300003, nil, true},
		{"eager, body fails midway", &failAfter{r: iotest.HalfReader(bytes.NewReader(big)), n: 10<<20 + 7, err: boom}, -1, 10<<20 + 7, boom, true},
		{"eager, data with EOF", iotest.DataErrReader(bytes.NewReader(big)), -1, int64(len(big)), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst bytes.Buffer
			h := sha256.New()
			n, err := copyHashed(&dst, h, tt.src, tt.hint, tt.eager)
			if !errors.Is(err, tt.wantErr) || n != tt.wantN {
				t.Fatalf("copyHashed = %d, %v; want %d, %v", n, err, tt.wantN, tt.wantErr)
			}
			if !bytes.Equal(dst.Bytes(), big[:n]) {
				t.Fatal("written bytes differ from the source")
			}
			// The hash covers exactly the written bytes, even when the body failed.
			if want := sha256.Sum256(big[:n]); !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatal("hash does not match the written bytes")
			}
		})
	}
}

// An eager copy writes what each read returned at once, before the next read: a reader
// following the destination is never kept waiting for a buffer to fill.
func TestCopyHashedEagerWritesEachRead(t *testing.T) {
	src := &steppedReader{step: make(chan []byte)}
	var dst lockedBuffer
	done := make(chan error, 1)
	go func() {
		_, err := copyHashed(&dst, sha256.New(), src, -1, true)
		done <- err
	}()
	want := 0
	for i := range 5 {
		piece := bytes.Repeat([]byte{byte(i)}, 1000*(i+1))
		src.step <- piece
		want += len(piece)
		// The piece must be written before the copy reads again (the next send).
		src.step <- nil
		if got := dst.Len(); got != want {
			t.Fatalf("after read %d the destination holds %d bytes, want %d", i, got, want)
		}
	}
	close(src.step)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// steppedReader returns each slice received on step as one read; a nil slice is a
// handshake (the copy came back for more), and a closed channel is EOF.
type steppedReader struct{ step chan []byte }

func (s *steppedReader) Read(p []byte) (int, error) {
	for {
		b, ok := <-s.step
		if !ok {
			return 0, io.EOF
		}
		if b != nil {
			return copy(p, b), nil
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}
