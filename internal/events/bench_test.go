package events

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

// BenchmarkWebhookDelivery pushes b.N manifests into 20 repositories of an SQLite
// registry and measures how fast one subscription receives them all (events/s) and the
// latency from each event's commit to its receipt (p50, p99).
//
//	go test -run '^$' -bench WebhookDelivery -benchtime 2000x ./internal/events/
func BenchmarkWebhookDelivery(b *testing.B) {
	m, err := meta.Open(context.Background(), meta.Options{Dialect: meta.SQLite, DSN: filepath.Join(b.TempDir(), "berth.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	svc := newTestService(b, m, Options{Workers: 8})
	var mu sync.Mutex
	var lat []time.Duration
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ce struct {
			Time time.Time `json:"time"`
		}
		_ = json.Unmarshal(body, &ce)
		mu.Lock()
		defer mu.Unlock()
		lat = append(lat, time.Since(ce.Time))
		if len(lat) == b.N {
			close(done)
		}
	}))
	defer srv.Close()
	if _, err := svc.Create(context.Background(), Subscription{Name: "bench", URL: srv.URL, Enabled: true}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go svc.Run(ctx)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		d := fmt.Sprintf("sha256:%064d", i)
		if err := m.PutManifest(context.Background(), meta.Manifest{Repository: fmt.Sprintf("bench/r%d", i%20), Digest: d,
			MediaType: "application/vnd.oci.image.manifest.v1+json", Payload: []byte(d)}, []string{fmt.Sprint("t", i)}); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d delivered", len(lat), b.N)
	}
	total := time.Since(start)
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/total.Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
}
