package server

import (
	"net"
	"strings"

	"github.com/berth-registry/berth/internal/config"
)

// announce logs what is being served, so the first line tells an operator what they
// started, and warns loudly when anyone who can reach the address may push and delete.
func (s *Server) announce(addr net.Addr, tlsOn bool) {
	c := s.cfg
	var ups []string
	for _, u := range c.Mirror.Upstreams {
		ups = append(ups, u.Name)
	}
	storage := c.Storage.Driver
	switch c.Storage.Driver {
	case "s3":
		storage += " " + c.Storage.S3.Endpoint + "/" + c.Storage.S3.Bucket
	default:
		storage += " " + c.Storage.Filesystem.Root
	}
	tlsDesc := "off"
	if tlsOn && s.certs != nil {
		tlsDesc = s.certs.Describe()
	}
	s.log.Info("berth listening", "addr", addr.String(), "tls", tlsDesc, "auth", c.Auth.Enabled,
		"database", c.Database.Driver+" "+databaseWhere(c.Database), "storage", storage, "data", c.Data,
		"upstreams", strings.Join(ups, ","), "default_upstream", c.Mirror.DefaultUpstream, "fips140", config.FIPSStatus())
	if !c.Auth.Enabled && !loopback(addr) {
		s.log.Warn("AUTHENTICATION IS OFF on a non-loopback address: anyone who can reach " + addr.String() +
			" may push, overwrite and delete images. Set auth.enabled: true (see the README's production checklist), " +
			"or listen on 127.0.0.1 only.")
	}
}

// databaseWhere names the database without its credentials.
func databaseWhere(d config.Database) string {
	if d.Driver != "postgres" {
		return d.DSN
	}
	if _, rest, ok := strings.Cut(d.DSN, "@"); ok {
		return rest
	}
	return "(dsn)"
}

func loopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
