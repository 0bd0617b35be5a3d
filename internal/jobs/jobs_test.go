package jobs_test

import (
	"testing"

	"github.com/berth-registry/berth/internal/jobs/jobstest"
	"github.com/berth-registry/berth/internal/meta/metatest"
)

// TestQueue runs the queue's contract on every backend (PostgreSQL when
// BERTH_TEST_POSTGRES_DSN is set; required under CI).
func TestQueue(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			jobstest.Run(t, b.Open)
		})
	}
}
