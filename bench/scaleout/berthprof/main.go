// Command berthprof is `berth serve` with profiling, for the -profile mode of this
// directory's benchmark only (a copy of bench/berthpprof; Berth itself does not serve
// /debug/pprof). It assembles the same server as cmd/berth through internal/server and
// adds, on a separate loopback address:
//
//	/debug/pprof/...        the standard net/http/pprof handlers
//	POST /bench/cpu/start?file=PATH   start a CPU profile written to PATH
//	POST /bench/cpu/stop              stop it
//
// Usage: berthprof -pprof 127.0.0.1:6060 serve --addr 127.0.0.1:5000 --data DIR [--config FILE]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	rpprof "runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "berthprof:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	top := flag.NewFlagSet("berthprof", flag.ContinueOnError)
	pprofAddr := top.String("pprof", "127.0.0.1:6060", "loopback address for /debug/pprof and the CPU profile controls")
	if err := top.Parse(args); err != nil {
		return err
	}
	rest := top.Args()
	if len(rest) == 0 || rest[0] != "serve" {
		return errors.New("usage: berthprof -pprof ADDR serve [--addr HOST:PORT] [--data DIR] [--config FILE]")
	}
	serve := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := serve.String("addr", "", "listen address")
	data := serve.String("data", "", "data directory")
	configFile := serve.String("config", "", "YAML configuration file")
	if err := serve.Parse(rest[1:]); err != nil {
		return err
	}
	// As cmd/berth: flags win over the file and the environment.
	environ := os.Environ()
	if *addr != "" {
		environ = append(environ, "BERTH_ADDR="+*addr)
	}
	if *data != "" {
		environ = append(environ, "BERTH_DATA="+*data)
	}
	cfg, err := config.Load(*configFile, environ)
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", *pprofAddr)
	if err != nil {
		return err
	}
	runtime.SetMutexProfileFraction(0)
	ps := &http.Server{Handler: profMux(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = ps.Serve(ln) }()
	defer ps.Close()
	return srv.Run(ctx)
}

func profMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)

	var mu sync.Mutex
	var cur *os.File
	mux.HandleFunc("POST /bench/cpu/start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if cur != nil {
			http.Error(w, "a CPU profile is already running", http.StatusConflict)
			return
		}
		f, err := os.Create(r.URL.Query().Get("file"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := rpprof.StartCPUProfile(f); err != nil {
			f.Close()
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		cur = f
	})
	mux.HandleFunc("POST /bench/cpu/stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if cur == nil {
			return
		}
		rpprof.StopCPUProfile()
		cur.Close()
		cur = nil
	})
	return mux
}
