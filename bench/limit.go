package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The pipeline limit (issue 12) is the best one stream can do on this machine with
// nothing a registry adds. Push: bytes sent by this process with sendfile from the
// page-cached source file over a loopback socket, received with 4 MiB reads, hashed
// with SHA-256, written to a file and fsynced: once in one goroutine (one pass, serial)
// and once pipelined (reading, hashing and writing on their own goroutines, as a
// receiver on several cores can), the better of the two being the limit. Pull: the file
// server's process (a process of its own, like the registries) sends the file with
// sendfile over a raw loopback socket, no HTTP, and this process reads it into nothing
// with 1 MiB buffers, as the pull client does. Each data-path figure is also shown as a
// percentage of these.

// limitBuf is the push receiver's read size: large, so that per-call costs vanish.
const limitBuf = 4 << 20

// pushLimit returns the push limit in MB/s (measured once per run, median of -reps
// each way, after a sync).
func (b *bench) pushLimit(ctx context.Context) (float64, error) {
	if b.limitPush > 0 {
		return b.limitPush, nil
	}
	big, err := b.bigLayer()
	if err != nil {
		return 0, err
	}
	var serial, piped []time.Duration
	for rep := range b.o.reps {
		for _, pipelined := range []bool{rep%2 == 1, rep%2 == 0} {
			syscall.Sync()
			el, err := limitPushOnce(ctx, big, filepath.Join(b.dir, "limit.bin"), pipelined)
			if err != nil {
				return 0, fmt.Errorf("pipeline limit (push): %w", err)
			}
			how := "serial"
			if pipelined {
				how, piped = "pipelined", append(piped, el)
			} else {
				serial = append(serial, el)
			}
			logf("  pipeline limit, push #%d %s: %.3fs, %.0f MB/s", rep+1, how, el.Seconds(), mbps(big.size, el))
		}
	}
	s, p := mbps(big.size, median(serial)), mbps(big.size, median(piped))
	b.limitPush = max(s, p)
	b.res.add("throughput", "pipeline limit, push of "+fmtSize(big.size)+": socket -> sha256 -> write -> fsync (machine, no registry)", "MB/s", b.same(b.limitPush))
	b.res.note("pipeline limit, push: %.0f MB/s, the better of one goroutine doing loopback socket -> sha256 -> write -> fsync in one pass with %d MiB reads (%.0f MB/s) and the same pipelined over three goroutines (%.0f MB/s); sender: sendfile of the page-cached file; median of %d each",
		b.limitPush, limitBuf>>20, s, p, b.o.reps)
	return b.limitPush, nil
}

// rawPull is one pull of the limit: the file server's process sends the file with
// sendfile to a raw socket; it returns the time until the last byte was read.
func rawPull(ctx context.Context, fs *target, big *bigBlob, buf []byte) (time.Duration, error) {
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", fs.raw)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, filepath.Base(big.path)+"\n"); err != nil {
		return 0, err
	}
	// Read straight into buf: io.Copy to io.Discard would read 8 KiB at a time.
	var n int64
	for {
		k, rerr := conn.Read(buf)
		n += int64(k)
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				err = rerr
			}
			break
		}
	}
	el := time.Since(start)
	if err == nil && n != big.size {
		err = fmt.Errorf("received %d bytes, want %d", n, big.size)
	}
	if err != nil {
		return 0, fmt.Errorf("pipeline limit (pull): %w", err)
	}
	return el, nil
}

// pullLimit records the pull limit from the raw pulls' times (taken in turn with the
// registries' pulls, under the same conditions) and returns it in MB/s.
func (b *bench) pullLimit(big *bigBlob, times []time.Duration) float64 {
	b.limitPull = mbps(big.size, median(times))
	b.res.add("throughput", "pipeline limit, pull of "+fmtSize(big.size)+": sendfile to a raw socket (machine, no registry)", "MB/s", b.same(b.limitPull))
	b.res.note("pipeline limit, pull: %.0f MB/s, sendfile of the page-cached file by a process of its own (the file server's) to a raw loopback socket, no HTTP, a new connection each time, read into nothing with 1 MiB buffers (median of %d, in turn with the registries' pulls)",
		b.limitPull, len(times))
	return b.limitPull
}

// same is one value for every registry's column: the limit is the machine's, the same
// bound for all.
func (b *bench) same(v float64) map[string]float64 {
	m := map[string]float64{}
	for _, t := range b.targets {
		m[t.name] = v
	}
	if len(m) == 0 { // phases that start their own Berth (hf): the limit still shows
		m["berth"] = v
	}
	return m
}

// serveRaw is the file server's raw listener: each connection names a file of dir on
// its first line and gets its bytes by sendfile, then EOF.
func serveRaw(ln net.Listener, dir string) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			name, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				return
			}
			f, err := os.Open(filepath.Join(dir, filepath.Base(strings.TrimSpace(name))))
			if err != nil {
				return
			}
			defer f.Close()
			_, _ = conn.(*net.TCPConn).ReadFrom(f) // sendfile
		}()
	}
}

// limitPushOnce sends the big file over a loopback connection with sendfile and times it
// until the receiver has hashed, written and fsynced every byte to dst (then removed).
func limitPushOnce(ctx context.Context, big *bigBlob, dst string, pipelined bool) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	received := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			received <- err
			return
		}
		defer conn.Close()
		received <- limitReceive(conn, big, dst, pipelined)
	}()
	src, err := os.Open(big.path)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	tcp := conn.(*net.TCPConn)
	if _, err := tcp.ReadFrom(src); err != nil { // sendfile
		return 0, err
	}
	if err := tcp.CloseWrite(); err != nil {
		return 0, err
	}
	select {
	case err = <-received:
	case <-ctx.Done():
		err = ctx.Err()
	}
	return time.Since(start), err
}

// limitReceive reads conn to EOF, hashing and writing every byte to dst, fsyncs and
// checks the digest. Pipelined, a reader goroutine fills a ring of buffers while the
// hash and the write of the previous one run side by side.
func limitReceive(conn net.Conn, big *bigBlob, dst string, pipelined bool) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer os.Remove(dst)
	defer f.Close()
	h := sha256.New()
	var n int64
	if pipelined {
		n, err = receivePipelined(conn, f, h)
	} else {
		n, err = receiveSerial(conn, f, h)
	}
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); n != big.size || got != big.digest {
		return fmt.Errorf("received %d bytes with digest %s, want %d, %s", n, got, big.size, big.digest)
	}
	return f.Close()
}

func receiveSerial(conn net.Conn, f *os.File, h hash.Hash) (int64, error) {
	buf := make([]byte, limitBuf)
	var n int64
	for {
		k, err := io.ReadFull(conn, buf)
		if k > 0 {
			h.Write(buf[:k])
			if _, werr := f.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func receivePipelined(conn net.Conn, f *os.File, h hash.Hash) (int64, error) {
	const ring = 4
	free, full := make(chan []byte, ring), make(chan []byte, ring)
	for range ring {
		free <- make([]byte, limitBuf)
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(full)
		for buf := range free {
			k, err := io.ReadFull(conn, buf)
			if k > 0 {
				full <- buf[:k]
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				readErr <- nil
				return
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	var n int64
	var werr error
	hashed := make(chan struct{})
	for buf := range full {
		go func() { h.Write(buf); hashed <- struct{}{} }()
		if werr == nil {
			_, werr = f.Write(buf)
		}
		<-hashed
		n += int64(len(buf))
		free <- buf[:cap(buf)]
	}
	if err := <-readErr; err != nil {
		return n, err
	}
	return n, werr
}

// limitRow adds "figure, % of the pipeline limit" for a data-path figure's speeds.
func (b *bench) limitRow(figure string, speed map[string]float64, limit float64, what string) *row {
	return b.limitRowIn("throughput", figure, speed, limit, what)
}

func (b *bench) limitRowIn(section, figure string, speed map[string]float64, limit float64, what string) *row {
	pct := map[string]float64{}
	for k, v := range speed {
		pct[k] = 100 * v / limit
	}
	return b.res.add(section, figure+", % of pipeline limit ("+what+")", "%", pct)
}
