package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// rateResult is one request-rate figure.
type rateResult struct {
	requests int64
	errors   int64
	elapsed  time.Duration
	cpu      time.Duration // server CPU during the measured window
	client   time.Duration // this process's CPU during the window (the load generator)
	firstErr string
}

func (r rateResult) perSecond() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// cpuPerRequestMS is the server's CPU milliseconds per request.
func (r rateResult) cpuPerRequestMS() float64 {
	if r.requests == 0 {
		return 0
	}
	return float64(r.cpu) / float64(time.Millisecond) / float64(r.requests)
}

// loadGen fires one request over and over on conns keep-alive connections: a
// pre-serialised HTTP/1.1 request written to the socket and the response parsed with
// http.ReadResponse. This costs the client far less CPU than net/http.Client, which on
// a 2-core machine leaves more of the machine to the server being measured.
func loadGen(ctx context.Context, t *target, method, path string, header map[string]string, conns int, warmup, dur time.Duration, label string) (rateResult, error) {
	return loadRun(ctx, t, method, path, header, conns, warmup, warmup+dur+30*time.Second, label, func() error { return sleepCtx(ctx, dur) })
}

// loadUntil is loadGen measured from its start (no warm-up) until done is closed, at most
// limit: the load that runs while something else happens (the gc phase). Failed requests
// are counted in the result and also returned as an error.
func loadUntil(ctx context.Context, t *target, method, path string, header map[string]string, conns int, done <-chan struct{}, limit time.Duration, label string) (rateResult, error) {
	return loadRun(ctx, t, method, path, header, conns, 0, limit+30*time.Second, label, func() error {
		select {
		case <-done:
			return nil
		case <-time.After(limit):
			return fmt.Errorf("%s on %s: still running after %s", label, t.name, limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// sleepCtx sleeps d, or less if ctx ends (then it returns ctx's error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
	}
	return nil
}

// loadRun runs the connections, warms up, then measures while wait runs.
func loadRun(ctx context.Context, t *target, method, path string, header map[string]string, conns int, warmup, limit time.Duration, label string, wait func() error) (rateResult, error) {
	var raw strings.Builder
	fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: berth-bench\r\n", method, path, t.host)
	for k, v := range header {
		fmt.Fprintf(&raw, "%s: %s\r\n", k, v)
	}
	raw.WriteString("\r\n")
	reqBytes := []byte(raw.String())

	var ok, bad atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	hardDeadline := time.Now().Add(limit)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(msg string) {
				bad.Add(1)
				firstErr.CompareAndSwap(nil, msg)
			}
			req := &http.Request{Method: method} // tells ReadResponse whether a body follows
			var conn net.Conn
			var br *bufio.Reader
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if conn == nil {
					c, err := net.DialTimeout("tcp", t.host, 5*time.Second)
					if err != nil {
						fail(err.Error())
						time.Sleep(10 * time.Millisecond)
						continue
					}
					_ = c.SetDeadline(hardDeadline)
					conn, br = c, bufio.NewReaderSize(c, 16<<10)
				}
				if _, err := conn.Write(reqBytes); err != nil {
					fail(err.Error())
					conn.Close()
					conn = nil
					continue
				}
				resp, err := http.ReadResponse(br, req)
				if err != nil {
					fail(err.Error())
					conn.Close()
					conn = nil
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					fail(fmt.Sprintf("%s %s: HTTP %d", method, path, resp.StatusCode))
				} else {
					ok.Add(1)
				}
				if resp.Close {
					conn.Close()
					conn = nil
				}
			}
		}()
	}
	var res rateResult
	err := sleepCtx(ctx, warmup)
	if err == nil {
		w := openWindow(t)
		n0, e0, s0 := ok.Load(), bad.Load(), ownCPU()
		err = wait()
		n1, e1, s1 := ok.Load(), bad.Load(), ownCPU()
		el, c := w.close(t.name + " " + label)
		res = rateResult{requests: n1 - n0, errors: e1 - e0, elapsed: el, cpu: c, client: s1 - s0}
	}
	close(stop)
	wg.Wait()
	if v := firstErr.Load(); v != nil {
		res.firstErr = v.(string)
	}
	if err != nil {
		return res, err
	}
	if res.errors > 0 || res.requests == 0 {
		return res, fmt.Errorf("%s %s on %s: %d ok, %d errors (first: %s)", method, path, t.name, res.requests, res.errors, res.firstErr)
	}
	return res, nil
}
