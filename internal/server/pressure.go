package server

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/storagepressure"
)

// newPressure builds the storage pressure monitor: a free-space watermark and reserve
// file on the filesystem driver, a byte budget on any driver. The reserve lives in the
// blob root, which by default shares the file system with the SQLite database it is
// there for.
func newPressure(ctx context.Context, cfg config.Config, m *meta.Store, log *slog.Logger) *storagepressure.Monitor {
	p := cfg.Storage.Pressure
	opts := storagepressure.Options{
		MaxBytes: int64(p.MaxBytes),
		Used:     m.StoredBytes,
		Interval: time.Duration(p.CheckInterval),
		Log:      log,
	}
	if cfg.Storage.Driver == "filesystem" {
		root := cfg.Storage.Filesystem.Root
		opts.Free = storagepressure.StatFS(root)
		opts.MinFreeBytes, opts.MinFreePercent = int64(p.MinFreeBytes), float64(p.MinFreePercent)
		opts.ReservePath, opts.ReserveBytes = filepath.Join(root, "reserve"), int64(p.Reserve)
	}
	return storagepressure.New(ctx, opts)
}

// registerPressureMetrics exports the last measurement; refusals are counted per
// refused request or write.
func registerPressureMetrics(reg prometheus.Registerer, mon *storagepressure.Monitor) {
	gauge := func(name, help string, v func(storagepressure.Status) float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return v(mon.Status()) }))
	}
	gauge("berth_storage_free_bytes", "Free bytes on the blob store's file system at the last measurement (-1: not measured).",
		func(s storagepressure.Status) float64 { return float64(s.Free) })
	gauge("berth_storage_watermark_bytes", "Free space below which writes are refused.",
		func(s storagepressure.Status) float64 { return float64(s.Watermark) })
	gauge("berth_storage_used_bytes", "Bytes stored by the database's account, measured when storage.pressure.maxBytes is set.",
		func(s storagepressure.Status) float64 { return float64(s.Used) })
	gauge("berth_storage_pressure", "1 while uploads and manifest pushes are refused for lack of storage, else 0.",
		func(s storagepressure.Status) float64 { return b2f(s.Pressured) })
	gauge("berth_storage_reserve_held", "1 while the reserve file is in place, 0 once released for the database.",
		func(s storagepressure.Status) float64 { return b2f(s.ReserveHeld) })
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "berth_storage_refusals_total",
		Help: "Requests and writes refused under storage pressure."},
		func() float64 { return float64(mon.Status().Refusals) }))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// readyPressure is the /readyz line for storage pressure, "" without it. Readiness stays
// 200 under pressure: reads still work, so a load balancer must keep sending them.
func readyPressure(mon *storagepressure.Monitor) string {
	if s := mon.Status(); s.Pressured {
		return "storage pressure: writes refused (" + s.Reason + ")\n"
	}
	return ""
}
