package adminapi_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/adminapi"
	"github.com/berth-registry/berth/internal/distribution"
)

// TestBodyDeadline: an administrator's request whose JSON body trickles in is answered
// 408 at the deadline (berth serve mounts the API behind distribution.BodyDeadline).
func TestBodyDeadline(t *testing.T) {
	w := newWorld(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(distribution.BodyDeadline(300*time.Millisecond, adminapi.New(w.svc, w.meta, log)))
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	authz := base64.StdEncoding.EncodeToString([]byte(root.user + ":" + root.pass))
	fmt.Fprintf(conn, "POST /api/v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":", authz)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("trickled admin request held %s, want it cut off at about 300ms", d)
	}
	if !strings.HasPrefix(line, "HTTP/1.1 408") {
		t.Errorf("answer %q, want 408", line)
	}
}
