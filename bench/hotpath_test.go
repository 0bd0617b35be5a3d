package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"hash"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/berth-registry/berth/internal/meta"
)

// BenchmarkManifestLookup prices the options for the manifest GET/HEAD hot path (see
// README "Profiling"): meta.Store.GetManifest as it is, the same SQL unprepared, as a
// prepared statement with a request-like and with a background context, and an
// in-memory map. Run it with
//
//	go test -run '^$' -bench ManifestLookup -benchmem ./bench
func BenchmarkManifestLookup(b *testing.B) {
	// A request context, as handlers pass: it has a Done channel, so the driver watches it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := filepath.Join(b.TempDir(), "berth.db")
	st, err := meta.Open(ctx, meta.Options{Dialect: meta.SQLite, DSN: dsn, SQLiteSynchronous: "FULL", MaxOpenConns: 8})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	layer := randBytes(1, 4096)
	layers := []descriptor{{MediaType: mtOCILayer, Digest: digestOf(layer), Size: 4096}}
	cfg := imageConfig(layers, "lookup")
	payload := manifestFor(cfg, layers)
	const repo, tag = "bench/manifest", "v1"
	dgst := digestOf(payload)
	if err := st.PutManifest(ctx, meta.Manifest{Repository: repo, Digest: dgst, MediaType: mtOCIManifest,
		Payload: payload, Blobs: []string{digestOf(cfg), layers[0].Digest}}, []string{tag}); err != nil {
		b.Fatal(err)
	}

	b.Run("store.GetManifest-by-tag", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.GetManifest(ctx, repo, tag, false, true); err != nil {
				b.Fatal(err)
			}
		}
	})

	// The same query on a second handle, opened as meta.Open opens the read pool.
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", "file:"+dsn+"?"+q.Encode())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	const byTag = `SELECT m.digest, m.media_type, m.size, m.payload, t.updated_at FROM tags t JOIN repositories r ON r.id = t.repository_id
			JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
			WHERE r.name = $1 AND t.name = $2`
	scan := func(row *sql.Row) error {
		var d, mt string
		var size, updated int64
		var p []byte
		return row.Scan(&d, &mt, &size, &p, &updated)
	}
	b.Run("QueryRowContext-unprepared", func(b *testing.B) {
		for b.Loop() {
			if err := scan(db.QueryRowContext(ctx, byTag, repo, tag)); err != nil {
				b.Fatal(err)
			}
		}
	})
	stmt, err := db.PrepareContext(ctx, byTag)
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()
	b.Run("Stmt.QueryRowContext-prepared", func(b *testing.B) {
		for b.Loop() {
			if err := scan(stmt.QueryRowContext(ctx, repo, tag)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Stmt.QueryRowContext-prepared-background-ctx", func(b *testing.B) {
		bg := context.Background() // no Done channel: the driver need not watch for cancellation
		for b.Loop() {
			if err := scan(stmt.QueryRowContext(bg, repo, tag)); err != nil {
				b.Fatal(err)
			}
		}
	})

	type entry struct {
		digest, mediaType string
		payload           []byte
	}
	var mu sync.RWMutex
	cache := map[string]entry{repo + ":" + tag: {dgst, mtOCIManifest, payload}}
	b.Run("in-memory-map", func(b *testing.B) {
		for b.Loop() {
			mu.RLock()
			e, ok := cache[repo+":"+tag]
			mu.RUnlock()
			if !ok || e.digest == "" {
				b.Fatal("miss")
			}
		}
	})
}

// BenchmarkUploadCopy prices the blob upload inner loop on this machine: a loopback TCP
// body hashed with sha256 and written to a file, serially in one goroutine (what
// registry.copyBuffered does today) and pipelined (hash and write of one buffer run in
// parallel with the read of the next). Run it with
//
//	go test -run '^$' -bench UploadCopy ./bench
func BenchmarkUploadCopy(b *testing.B) {
	const size = 256 << 20
	payload := randBytes(7, 8<<20)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	// The sender: a client pushing size bytes per accepted connection.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for left := size; left > 0; left -= len(payload) {
					if _, err := c.Write(payload[:min(len(payload), left)]); err != nil {
						return
					}
				}
			}()
		}
	}()
	path := filepath.Join(b.TempDir(), "upload")
	run := func(b *testing.B, copyFn func(w io.Writer, h hash.Hash, r io.Reader) (int64, error)) {
		b.SetBytes(size)
		for b.Loop() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			n, err := copyFn(f, sha256.New(), c)
			c.Close()
			f.Close()
			if err != nil || n != size {
				b.Fatalf("copied %d bytes: %v", n, err)
			}
		}
	}
	b.Run("serial-256KiB", func(b *testing.B) {
		buf := make([]byte, 256<<10)
		run(b, func(w io.Writer, h hash.Hash, r io.Reader) (int64, error) {
			return io.CopyBuffer(io.MultiWriter(w, h), r, buf)
		})
	})
	b.Run("pipelined-4x1MiB", func(b *testing.B) { run(b, pipelinedCopy) })
}

// pipelinedCopy reads r into a ring of buffers; a hashing goroutine and a writing
// goroutine consume each buffer in parallel while the next one is being read.
func pipelinedCopy(w io.Writer, h hash.Hash, r io.Reader) (int64, error) {
	const k, size = 4, 1 << 20
	hashq, writeq := make(chan []byte, k), make(chan []byte, k)
	hashed, written := make(chan struct{}, k), make(chan error, k)
	go func() {
		for p := range hashq {
			h.Write(p)
			hashed <- struct{}{}
		}
	}()
	go func() {
		for p := range writeq {
			_, err := w.Write(p)
			written <- err
		}
	}()
	bufs := make([][]byte, k)
	var total int64
	var werr, rerr error
	inflight := 0
	release := func() {
		<-hashed
		if err := <-written; err != nil && werr == nil {
			werr = err
		}
		inflight--
	}
	for i := 0; rerr == nil && werr == nil; i++ {
		if inflight == k {
			release()
		}
		if bufs[i%k] == nil {
			bufs[i%k] = make([]byte, size)
		}
		n, err := io.ReadFull(r, bufs[i%k])
		if n > 0 {
			total += int64(n)
			hashq <- bufs[i%k][:n]
			writeq <- bufs[i%k][:n]
			inflight++
		}
		if err != nil {
			rerr = err
		}
	}
	for inflight > 0 {
		release()
	}
	close(hashq)
	close(writeq)
	if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
		rerr = nil
	}
	if werr != nil {
		return total, werr
	}
	return total, rerr
}
