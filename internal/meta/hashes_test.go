package meta_test

import (
	"context"
	"slices"
	"testing"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
)

// TestHashUpgrade: BcryptHashes names only bcrypt rows, and ReplaceUserHash /
// ReplaceRobotHash swap a hash only while it is the one the caller read.
func TestHashUpgrade(t *testing.T) {
	for _, be := range metatest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			ctx := context.Background()
			s := be.Open(t)
			const bc = "$2a$04$geIzGdPf.mUCxqWm/XnsauqekX/yP/pkk.1Trf/MsnuG6yyA220pW"
			const pb = "$pbkdf2-sha256$i=600000$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
			for _, u := range []meta.User{{Name: "old", PasswordHash: bc}, {Name: "new", PasswordHash: pb}, {Name: "dir", Source: "ldap"}} {
				if _, err := s.CreateUser(ctx, u); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.CreateRobot(ctx, meta.Robot{Name: "robot$old", SecretHash: bc, Permissions: "[]"}); err != nil {
				t.Fatal(err)
			}
			users, robots, err := s.BcryptHashes(ctx, 10)
			if err != nil || !slices.Equal(users, []string{"old"}) || !slices.Equal(robots, []string{"robot$old"}) {
				t.Fatalf("BcryptHashes = %v, %v, %v", users, robots, err)
			}
			if ok, err := s.ReplaceUserHash(ctx, "old", "stale", pb); err != nil || ok {
				t.Fatalf("replace with a stale old hash: %v, %v; want no change", ok, err)
			}
			if ok, err := s.ReplaceUserHash(ctx, "old", bc, pb); err != nil || !ok {
				t.Fatalf("replace: %v, %v", ok, err)
			}
			if ok, err := s.ReplaceRobotHash(ctx, "robot$old", bc, pb); err != nil || !ok {
				t.Fatalf("replace robot: %v, %v", ok, err)
			}
			if users, robots, _ := s.BcryptHashes(ctx, 10); len(users)+len(robots) != 0 {
				t.Fatalf("after the upgrade: %v %v", users, robots)
			}
		})
	}
}
