package limits

import (
	"fmt"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_000_000, 0)} }

func TestBucketsTake(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rate     Rate
		takes    int           // taken at once
		after    time.Duration // then wait
		wantOK   int           // of takes, how many pass
		wantNext bool          // does one more pass after the wait
		wantWait time.Duration // the refusal's wait before the pause (when one was refused)
	}{
		{"burst passes", Rate{PerSecond: 10, Burst: 5}, 5, 0, 5, false, 100 * time.Millisecond},
		{"past burst refused", Rate{PerSecond: 10, Burst: 5}, 8, 0, 5, false, 100 * time.Millisecond},
		{"refills at rate", Rate{PerSecond: 10, Burst: 5}, 6, 100 * time.Millisecond, 5, true, 100 * time.Millisecond},
		{"slow rate waits long", Rate{PerSecond: 0.5, Burst: 1}, 2, time.Second, 1, false, 2 * time.Second},
		{"never above burst", Rate{PerSecond: 100, Burst: 2}, 3, time.Hour, 2, true, 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			b := NewBuckets(tc.rate, 10, c.now)
			ok, lastWait := 0, time.Duration(0)
			for range tc.takes {
				if pass, wait := b.Take("k"); pass {
					ok++
				} else {
					lastWait = wait
				}
			}
			if ok != tc.wantOK {
				t.Fatalf("passed %d of %d, want %d", ok, tc.takes, tc.wantOK)
			}
			if ok < tc.takes && lastWait != tc.wantWait {
				t.Fatalf("refusal wait %v, want %v", lastWait, tc.wantWait)
			}
			c.add(tc.after)
			if pass, _ := b.Take("k"); pass != tc.wantNext {
				t.Fatalf("after %v: pass %v, want %v", tc.after, pass, tc.wantNext)
			}
			if tc.name == "never above burst" {
				if pass, _ := b.Take("k"); !pass {
					t.Fatal("second after a long pause refused")
				}
				if pass, _ := b.Take("k"); pass {
					t.Fatal("a long pause saved more than the burst")
				}
			}
		})
	}
}

func TestBucketsKeysIndependent(t *testing.T) {
	b := NewBuckets(Rate{PerSecond: 1, Burst: 1}, 10, newClock().now)
	if ok, _ := b.Take("a"); !ok {
		t.Fatal("a refused")
	}
	if ok, _ := b.Take("a"); ok {
		t.Fatal("a passed twice")
	}
	if ok, _ := b.Take("b"); !ok {
		t.Fatal("b refused because of a")
	}
}

func TestBucketsEviction(t *testing.T) {
	for _, tc := range []struct {
		name string
		// One drained key is the oldest; idle keys are full again when the flood of new
		// keys comes.
		idle, flood, max int
		wantDrainedKept  bool
	}{
		{"bounded by max under a key flood", 0, 10_000, 100, false},
		{"full idle buckets go before an older drained one", 99, 50, 100, true},
		{"the least recent goes once no full one is near the idle end", 0, 200, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			b := NewBuckets(Rate{PerSecond: 1, Burst: 2}, tc.max, c.now)
			b.Take("drained")
			b.Take("drained")
			for i := range tc.idle {
				b.Take(fmt.Sprint("idle", i))
			}
			c.add(time.Second) // idle buckets full again, the drained one at 1 of 2
			for i := range tc.flood {
				b.Take(fmt.Sprint("flood", i))
				if n := b.Len(); n > tc.max {
					t.Fatalf("%d buckets held, max %d", n, tc.max)
				}
			}
			b.Take("drained")
			second, _ := b.Take("drained")
			if kept := !second; kept != tc.wantDrainedKept {
				t.Fatalf("drained bucket kept %v, want %v", kept, tc.wantDrainedKept)
			}
		})
	}
}
