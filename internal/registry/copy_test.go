package registry

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
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
	}{
		{"empty", bytes.NewReader(nil), 0, 0, nil},
		{"small serial", bytes.NewReader(big[:1000]), 1000, 1000, nil},
		{"large pipelined", bytes.NewReader(big), int64(len(big)), int64(len(big)), nil},
		{"unknown size pipelined", bytes.NewReader(big), -1, int64(len(big)), nil},
		{"body fails midway", &failAfter{r: bytes.NewReader(big), n: 10<<20 + 7, err: boom}, int64(len(big)), 10<<20 + 7, boom},
		{"body ends early", &failAfter{r: bytes.NewReader(big), n: 3 << 20, err: io.ErrUnexpectedEOF}, int64(len(big)), 3 << 20, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst bytes.Buffer
			h := sha256.New()
			n, err := copyHashed(&dst, h, tt.src, tt.hint)
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
