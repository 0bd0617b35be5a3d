package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkProxyCopy prices how a blob GET streams an upstream HTTP body (an S3 object)
// to its client: the copy in Berth's serveBlob for S3 blobs. Upstream (a plain file
// server), proxy and client are separate processes, as versitygw, Berth and a client are;
// the proxy's CPU is read from /proc.
//
//	go test -run '^$' -bench ProxyCopy -benchtime 8x ./bench/stacks
//
// Variants: iocopy is io.Copy(w, body), as serveBlob does today; the ResponseWriter
// implements io.ReaderFrom, so this is net/http's generic 32 KiB loop, a read and a write
// system call per 32 KiB at most. bufio4M puts the body behind a 4 MiB bufio.Reader
// (Distribution's fileReader). buf1M is io.CopyBuffer with a 1 MiB buffer into the
// ResponseWriter with its ReadFrom hidden (otherwise CopyBuffer ignores the buffer).
func BenchmarkProxyCopy(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "blob"), randBytes(1, size), 0o600); err != nil {
		b.Fatal(err)
	}
	up := startRole(b, "upstream", dir, "")
	for _, v := range []string{"iocopy", "bufio4M", "buf1M"} {
		b.Run(v, func(b *testing.B) {
			px := startRole(b, "proxy:"+v, "", up.addr)
			buf := make([]byte, 1<<20)
			hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
			b.SetBytes(size)
			c0 := pidCPU(px.cmd.Process.Pid, false)
			b.ResetTimer()
			for range b.N {
				resp, err := hc.Get("http://" + px.addr + "/blob")
				if err != nil {
					b.Fatal(err)
				}
				var n int64
				for {
					m, err := resp.Body.Read(buf)
					n += int64(m)
					if err != nil {
						break
					}
				}
				resp.Body.Close()
				if n != size {
					b.Fatalf("got %d bytes", n)
				}
			}
			b.StopTimer()
			b.ReportMetric((pidCPU(px.cmd.Process.Pid, false)-c0).Seconds()/(float64(size)*float64(b.N)/1e9), "proxy-CPU-s/GB")
		})
	}
}

type roleProc struct {
	cmd  *exec.Cmd
	addr string
}

// startRole re-executes the test binary as an upstream or a proxy (see TestMain).
func startRole(b *testing.B, role, dir, upstream string) *roleProc {
	addr, err := freePort()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PROXYCOPY_ROLE="+role, "PROXYCOPY_ADDR="+addr, "PROXYCOPY_DIR="+dir, "PROXYCOPY_UPSTREAM="+upstream)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not start", role)
		}
	}
	return &roleProc{cmd: cmd, addr: addr}
}

func TestMain(m *testing.M) {
	role := os.Getenv("PROXYCOPY_ROLE")
	if role == "" {
		os.Exit(m.Run())
	}
	addr := os.Getenv("PROXYCOPY_ADDR")
	var h http.Handler
	switch role {
	case "upstream":
		h = http.FileServer(http.Dir(os.Getenv("PROXYCOPY_DIR")))
	default:
		variant := role[len("proxy:"):]
		tr := &http.Transport{Proxy: nil}
		upstream := "http://" + os.Getenv("PROXYCOPY_UPSTREAM")
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, upstream+r.URL.Path, nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			w.Header().Set("Content-Length", resp.Header.Get("Content-Length"))
			body := struct{ io.Reader }{resp.Body} // an S3 blob: a plain io.Reader
			switch variant {
			case "iocopy":
				_, _ = io.Copy(w, body)
			case "bufio4M":
				_, _ = io.Copy(w, struct{ io.Reader }{bufio.NewReaderSize(body, 4<<20)})
			case "buf1M":
				_, _ = io.CopyBuffer(struct{ io.Writer }{w}, body, make([]byte, 1<<20))
			}
		})
	}
	fmt.Fprintln(os.Stderr, (&http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}).ListenAndServe())
	os.Exit(1)
}
