package server

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/config"
)

func TestAnnounce(t *testing.T) {
	for _, c := range []struct {
		name     string
		ip       string
		auth     bool
		dsn      string
		warn     bool
		contains []string
		absent   []string
	}{
		{name: "loopback, auth off", ip: "127.0.0.1", contains: []string{"auth=false", "database=\"sqlite data/berth.db\""}},
		{name: "all interfaces, auth off", ip: "0.0.0.0", warn: true, contains: []string{"AUTHENTICATION IS OFF"}},
		{name: "public, auth on", ip: "10.1.2.3", auth: true, contains: []string{"auth=true"}},
		{name: "postgres credentials hidden", ip: "127.0.0.1", dsn: "postgres://berth:s3cret@db:5432/berth",
			contains: []string{"db:5432/berth"}, absent: []string{"s3cret"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			cfg := config.Default()
			cfg.Auth.Enabled = c.auth
			cfg.Database.DSN = "data/berth.db"
			if c.dsn != "" {
				cfg.Database.Driver, cfg.Database.DSN = "postgres", c.dsn
			}
			s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(&buf, nil))}
			s.announce(&net.TCPAddr{IP: net.ParseIP(c.ip), Port: 5000}, false)
			out := buf.String()
			if got := strings.Contains(out, "level=WARN"); got != c.warn {
				t.Errorf("warning = %v, want %v:\n%s", got, c.warn, out)
			}
			for _, w := range c.contains {
				if !strings.Contains(out, w) {
					t.Errorf("start-up lines lack %q:\n%s", w, out)
				}
			}
			for _, w := range c.absent {
				if strings.Contains(out, w) {
					t.Errorf("start-up lines show %q:\n%s", w, out)
				}
			}
		})
	}
}
