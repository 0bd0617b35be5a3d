package config

import (
	"errors"
	"time"
)

// Pressure is storage.pressure: when new data is refused for lack of room (package
// storagepressure). Reads, deletes and GC are never refused.
type Pressure struct {
	// MinFreeBytes and MinFreePercent set the free-space watermark of the filesystem
	// driver: the larger of the two is the free space below which uploads and manifest
	// pushes are refused (507 DENIED). 0 turns either off.
	MinFreeBytes   ByteSize `yaml:"minFreeBytes"`
	MinFreePercent int      `yaml:"minFreePercent"`
	// MaxBytes is a byte budget on any driver (S3 too), counted from the blob and upload
	// sizes in the database; 0: none.
	MaxBytes ByteSize `yaml:"maxBytes"`
	// Reserve is the size of the reserve file kept beside the SQLite database (or in
	// the blob root): released when the disk fills so deletes and GC can still commit;
	// 0: none. Filesystem driver only.
	Reserve ByteSize `yaml:"reserve"`
	// CheckInterval is how often free space is measured; refused requests also measure
	// again, so writing resumes soon after space returns.
	CheckInterval Duration `yaml:"checkInterval"`
}

// DefaultPressure is the documented default: refuse below 256MiB or 1% free, keep a
// 32MiB reserve, measure every second.
func DefaultPressure() Pressure {
	return Pressure{MinFreeBytes: 256 << 20, MinFreePercent: 1, Reserve: 32 << 20, CheckInterval: Duration(time.Second)}
}

func (p Pressure) validate() []error {
	var errs []error
	if p.MinFreeBytes < 0 || p.MaxBytes < 0 || p.Reserve < 0 {
		errs = append(errs, errors.New("storage.pressure: minFreeBytes, maxBytes and reserve must not be negative"))
	}
	if p.MinFreePercent < 0 || p.MinFreePercent >= 100 {
		errs = append(errs, errors.New("storage.pressure.minFreePercent must be in [0, 100)"))
	}
	if p.CheckInterval < Duration(10*time.Millisecond) || p.CheckInterval > Duration(time.Minute) {
		errs = append(errs, errors.New("storage.pressure.checkInterval must be between 10ms and 1m"))
	}
	return errs
}
