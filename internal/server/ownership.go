package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/proxy"
)

// ownRepositories makes every stored repository belong to a project before the first
// request is served. Repositories pushed while authentication was off have no project
// row; left so, the first user to push to the name would be made its administrator and
// take them over. They are adopted into private projects without members (system
// administrators only), and mirror.localProjects are created. Runs at every start, on
// every replica: creating a project that exists is a no-op.
func ownRepositories(ctx context.Context, cfg config.Config, m *meta.Store, mirror *proxy.Mirror, log *slog.Logger) error {
	var created []meta.AuditEntry
	ensure := func(name, detail string) error {
		_, err := m.CreateProject(ctx, meta.Project{Name: name}, "", "")
		if errors.Is(err, meta.ErrExists) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("project %s: %w", name, err)
		}
		created = append(created, meta.AuditEntry{At: time.Now(), Actor: "berth", ActorType: "system", Action: "project.adopt", Remote: "local",
			Resource: name, Result: "ok", Detail: detail})
		return nil
	}
	for _, p := range cfg.Mirror.LocalProjects {
		if err := ensure(p, "mirror.localProjects"); err != nil {
			return err
		}
		log.Info("created a local project beside the default upstream", "project", p)
	}
	reserved := func(project string) bool { return mirror != nil && mirror.Reserved(project) }
	unowned, err := m.UnownedProjects(ctx, reserved)
	if err != nil {
		return fmt.Errorf("find repositories without a project: %w", err)
	}
	for _, p := range unowned {
		if err := ensure(p, "repositories without a project; private, no members"); err != nil {
			return err
		}
		log.Warn("adopted repositories that had no project: private, system administrators only until roles are granted", "project", p)
	}
	if len(created) == 0 {
		return nil
	}
	return m.AppendAudit(ctx, created)
}
