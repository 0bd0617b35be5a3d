package server

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// reloadOnHangup re-reads the TLS certificate on SIGHUP. Open connections keep the
// certificate they were handshaken with; new ones get the new one, so nothing drops.
func (s *Server) reloadOnHangup(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := s.certs.Reload(ctx); err != nil {
				s.log.Error("SIGHUP: TLS certificate not reloaded; still serving the previous one", "err", err)
				continue
			}
			s.log.Info("SIGHUP: TLS certificate reloaded")
		}
	}
}

// serveACMEChallenges answers ACME HTTP-01 challenges on tls.acme.httpAddr.
func (s *Server) serveACMEChallenges(ctx context.Context, h http.Handler) {
	srv := &http.Server{Addr: s.cfg.TLS.ACME.HTTPAddr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("ACME HTTP-01 listener", "addr", srv.Addr, "err", err)
	}
}
