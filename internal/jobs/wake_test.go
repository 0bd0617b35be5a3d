package jobs_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta/metatest"
)

// TestWake: a runner idle for its (hour-long) poll interval runs a task queued now as
// soon as it is woken; without Wake the task would wait the hour.
func TestWake(t *testing.T) {
	b := metatest.Backends(t)[0]
	m := b.Open(t)
	s := jobs.NewStore(m.DB())
	r := jobs.NewRunner(s, jobs.Options{Worker: "w", Poll: time.Hour}, nil, slog.New(slog.DiscardHandler))
	ran := make(chan string, 1)
	r.Handle("wake.test", func(_ context.Context, task jobs.Task) error { ran <- task.Key; return nil })
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { r.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	time.Sleep(200 * time.Millisecond) // let the first claim find nothing and go idle
	if err := s.Enqueue(ctx, jobs.Task{Kind: "wake.test", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	r.Wake()
	select {
	case k := <-ran:
		if k != "k" {
			t.Fatalf("ran %q", k)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a woken runner did not claim the task queued before the wake")
	}
}
