package config

import "fmt"

// Replication configures replication rules (package replication): copies of artifact
// graphs to or from other registries, managed with the admin API (berth admin
// replication). Transfers run as jobs on any replica.
type Replication struct {
	// Enabled runs replication rules in this process.
	Enabled bool `yaml:"enabled"`
	// Workers is how many replications this process runs at once.
	Workers int `yaml:"workers"`
	// Registry is how the replicator reaches this registry (host:port; default: the
	// listen port on 127.0.0.1). It authenticates with short-lived tokens of the rule's
	// creator.
	Registry string `yaml:"registry"`
}

func defaultReplication() Replication { return Replication{Enabled: true, Workers: 2} }

func (r Replication) validate() []error {
	if r.Workers < 1 {
		return []error{fmt.Errorf("replication.workers must be at least 1")}
	}
	return nil
}
