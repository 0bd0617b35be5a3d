package metacache

import (
	"fmt"
	"sync"
	"testing"
)

func TestCache(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, c *Cache)
	}{
		{"get what was added", func(t *testing.T, c *Cache) {
			if !c.Add("a", 1, 10, c.Generation()) {
				t.Fatal("not added")
			}
			if v, ok := c.Get("a"); !ok || v != 1 {
				t.Fatalf("got %v %v", v, ok)
			}
			if _, ok := c.Get("b"); ok {
				t.Fatal("b found")
			}
		}},
		{"a flush refuses values read before it", func(t *testing.T, c *Cache) {
			g := c.Generation()
			c.Add("a", 1, 10, g)
			c.Flush()
			if _, ok := c.Get("a"); ok {
				t.Fatal("a survived the flush")
			}
			if c.Add("a", 1, 10, g) {
				t.Fatal("a value read before the flush was added after it")
			}
			if !c.Add("a", 2, 10, c.Generation()) {
				t.Fatal("a value read after the flush was refused")
			}
		}},
		{"least recently used goes first", func(t *testing.T, c *Cache) {
			g := c.Generation()
			per := int64(1000) // with the overhead, about 1.2 KB each in a 16 KB cache
			for i := range 10 {
				c.Add(fmt.Sprint(i), i, per, g)
			}
			c.Get("0") // 0 is now the most recently used
			for i := 10; i < 20; i++ {
				c.Add(fmt.Sprint(i), i, per, g)
			}
			if _, ok := c.Get("0"); !ok {
				t.Error("the recently used entry was evicted")
			}
			if _, ok := c.Get("1"); ok {
				t.Error("the least recently used entry was kept")
			}
			if s := c.Stats(); s.Bytes > 16<<10 {
				t.Errorf("%d bytes held, bound 16 KiB", s.Bytes)
			}
		}},
		{"too large is not kept", func(t *testing.T, c *Cache) {
			if c.Add("big", 1, 4<<10, c.Generation()) {
				t.Fatal("an entry of a quarter of the cache was kept")
			}
		}},
		{"replacing keeps the byte count right", func(t *testing.T, c *Cache) {
			g := c.Generation()
			c.Add("a", 1, 100, g)
			c.Add("a", 2, 300, g)
			if s := c.Stats(); s.Entries != 1 || s.Bytes != 300+entryOverhead+1 {
				t.Fatalf("stats %+v", s)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, New(16<<10)) })
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := New(64 << 10)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := fmt.Sprint(i % 97)
				if _, ok := c.Get(k); !ok {
					c.Add(k, i, 100, c.Generation())
				}
				if w == 0 && i%500 == 0 {
					c.Flush()
				}
			}
		})
	}
	wg.Wait()
	if s := c.Stats(); s.Bytes > 64<<10 || s.Entries > 97 {
		t.Fatalf("stats %+v", s)
	}
}
