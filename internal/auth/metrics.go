package auth

import "slices"

// Metrics is the robot permission to read /metrics. It is granted on "*" to system
// robots only: metrics are about the whole registry, and the permission opens nothing
// in any repository.
const Metrics Action = "metrics"

// MayReadMetrics tells whether p may read /metrics when it is not public: system
// administrators, and robots holding the metrics permission on every project.
func MayReadMetrics(p *Principal) bool {
	if p == nil {
		return false
	}
	if p.Admin {
		return true
	}
	if p.Kind != "robot" {
		return false
	}
	for _, perm := range p.RobotPerms {
		if perm.Project == "*" && slices.Contains(perm.Actions, Metrics) {
			return true
		}
	}
	return false
}
