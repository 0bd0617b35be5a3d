package server

import (
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/adminapi"
	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/replication"
)

// newReplication builds the replication service (nil with replication.enabled off).
// Its on-push trigger is a consumer of the events dispatcher (none with events off).
// It reaches this registry on loopback with tokens of each rule's creator.
func newReplication(cfg config.Config, m *meta.Store, ev *events.Service, authSvc *auth.Service, reg prometheus.Registerer, log *slog.Logger) (*replication.Service, error) {
	rc := cfg.Replication
	if !rc.Enabled {
		return nil, nil
	}
	sealer, err := events.LoadKey(secretKeyFile(cfg), true)
	if err != nil {
		return nil, fmt.Errorf("replication: %w", err)
	}
	local := rc.Registry
	if local == "" {
		_, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("replication: addr: %w", err)
		}
		local = net.JoinHostPort("127.0.0.1", port)
	}
	token := func(user string, repos []string, actions ...string) (string, error) {
		if authSvc == nil {
			return "", nil
		}
		access := make([]auth.Access, len(repos))
		for i, r := range repos {
			access[i] = auth.Access{Type: "repository", Name: r, Actions: actions}
		}
		tok, _, err := authSvc.Tokens.Issue(&auth.Principal{Kind: "user", Name: user}, access)
		return tok, err
	}
	host, _ := os.Hostname()
	var pub events.Publisher
	if ev != nil {
		pub = ev
	}
	svc := replication.New(m, sealer, pub, replication.Options{Local: local, LocalToken: token, Workers: rc.Workers,
		Worker: fmt.Sprintf("%s/%d/replication", host, os.Getpid())}, reg, log)
	if ev != nil {
		ev.Consume(svc.Consume)
	}
	return svc, nil
}

// replicationAPI keeps a nil *replication.Service a nil interface for the admin API.
func replicationAPI(svc *replication.Service) adminapi.Replication {
	if svc == nil {
		return nil
	}
	return svc
}
