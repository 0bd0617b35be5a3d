package storagepressure

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/errcode"
)

// fakeDisk is an injectable free-space source.
type fakeDisk struct{ free, total int64 }

func (d *fakeDisk) source() FreeSpace {
	return func() (int64, int64, error) { return d.free, d.total, nil }
}

// diskWriter takes what it writes from the fake disk's free space.
type diskWriter struct {
	buf  *bytes.Buffer
	disk *fakeDisk
}

func (w diskWriter) Write(p []byte) (int, error) {
	w.disk.free -= int64(len(p))
	return w.buf.Write(p)
}

// clock advances by hand so measurements go stale on demand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestAdmit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name      string
		free      int64
		opts      Options
		used      int64
		refused   bool
		inMessage string
	}{
		{name: "room", free: 100 * mib, opts: Options{MinFreeBytes: 10 * mib}},
		{name: "below bytes", free: 5 * mib, opts: Options{MinFreeBytes: 10 * mib}, refused: true, inMessage: "below the 10.0MiB watermark"},
		{name: "below percent", free: 50 * mib, opts: Options{MinFreeBytes: mib, MinFreePercent: 10}, refused: true, inMessage: "100.0MiB watermark"},
		{name: "percent met", free: 150 * mib, opts: Options{MinFreePercent: 10}},
		{name: "budget spent", free: 900 * mib, opts: Options{MaxBytes: 64 * mib}, used: 64 * mib, refused: true, inMessage: "byte budget"},
		{name: "budget left", free: 900 * mib, opts: Options{MaxBytes: 64 * mib}, used: 63 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk := &fakeDisk{free: tc.free, total: 1000 * mib}
			tc.opts.Free = disk.source()
			tc.opts.Used = func(context.Context) (int64, error) { return tc.used, nil }
			m := New(context.Background(), tc.opts)
			err := m.Admit()
			if (err != nil) != tc.refused {
				t.Fatalf("Admit = %v, refused want %v", err, tc.refused)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, errcode.StorageFull) || errcode.From(err).Desc.Status != 507 {
				t.Fatalf("refusal %v is not StorageFull/507", err)
			}
			if !strings.Contains(err.Error(), tc.inMessage) || !m.Status().Pressured || m.Status().Refusals != 1 {
				t.Fatalf("refusal %q (status %+v), want message with %q", err, m.Status(), tc.inMessage)
			}
		})
	}
}

func TestResumesWhenSpaceReturns(t *testing.T) {
	disk := &fakeDisk{free: 5 << 20, total: 1 << 30}
	clk := &clock{t: time.Unix(1000, 0)}
	m := New(context.Background(), Options{Free: disk.source(), MinFreeBytes: 10 << 20, Now: clk.now})
	if m.Admit() == nil {
		t.Fatal("admitted below the watermark")
	}
	disk.free = 50 << 20
	if m.Admit() == nil {
		t.Fatal("a measurement younger than recheck is trusted")
	}
	clk.t = clk.t.Add(recheck)
	if err := m.Admit(); err != nil {
		t.Fatalf("still refused once space returned: %v", err)
	}
}

func TestWriterStopsAtWatermark(t *testing.T) {
	disk := &fakeDisk{free: 20 << 10, total: 1 << 30}
	m := New(context.Background(), Options{Free: disk.source(), MinFreeBytes: 8 << 10})
	var sink bytes.Buffer
	w := m.Writer(diskWriter{&sink, disk})
	chunk := make([]byte, 4<<10)
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		_, err = w.Write(chunk)
	}
	if !errors.Is(err, errcode.StorageFull) {
		t.Fatalf("write past the watermark: %v", err)
	}
	// 20KiB free, 8KiB watermark: an admitted upload may go on down to 4KiB free, so
	// four 4KiB writes fit and the fifth would cross.
	if sink.Len() != 16<<10 {
		t.Fatalf("wrote %d bytes before refusing, want %d", sink.Len(), 16<<10)
	}
	if m.Admit() == nil {
		t.Fatal("new data admitted below the watermark")
	}
}

func TestReserve(t *testing.T) {
	const mib = 1 << 20
	path := filepath.Join(t.TempDir(), "reserve")
	disk := &fakeDisk{free: 100 * mib, total: 1 << 30}
	clk := &clock{t: time.Unix(1000, 0)}
	m := New(context.Background(), Options{Free: disk.source(), MinFreeBytes: 10 * mib, ReservePath: path, ReserveBytes: 2 * mib, Now: clk.now})
	steps := []struct {
		name         string
		free         int64 // as the disk reports it
		held         bool
		pressured    bool
		fileExpected bool
	}{
		{"created at start", 100 * mib, true, false, true},
		{"pressure keeps it", 5 * mib, true, true, true},
		{"disk full releases it", mib, false, true, false},
		{"released bytes do not end the pressure", 3 * mib, false, true, false},
		{"room again re-creates it", 40 * mib, true, false, true},
	}
	for _, st := range steps {
		disk.free = st.free
		s := m.Measure(context.Background())
		_, err := os.Stat(path)
		if s.ReserveHeld != st.held || s.Pressured != st.pressured || (err == nil) != st.fileExpected {
			t.Fatalf("%s: status %+v, file err %v", st.name, s, err)
		}
	}
}

func TestDisabled(t *testing.T) {
	m := New(context.Background(), Options{})
	var sink bytes.Buffer
	if m.Admit() != nil || m.Writer(&sink) != &sink || m.Pressured(context.Background()) {
		t.Fatal("a monitor measuring nothing refused something")
	}
}
