package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The machine may be shared: other processes' CPU during a figure skews it. Every
// measured window records how much of the machine was busy outside the registry under
// test and the benchmark itself (with its crane children), and the run reports it.

// machineCPU returns busy and total CPU time of the whole machine from /proc/stat. Busy
// is user, nice, system and steal time; interrupt and softirq time (loopback networking
// and block I/O completions for the traffic under test) is left out, as is the time of
// kernel threads (writeback, journalling of the registries' own writes), so that what
// remains after subtracting the registry and the benchmark is other processes' load.
func machineCPU() (busy, total time.Duration) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal guest guest_nice
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	var v [8]int64
	for i := range v {
		v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	all := v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]
	tick := time.Second / clockTicks
	return time.Duration(v[0]+v[1]+v[2]+v[7])*tick - kernelThreadsCPU(), time.Duration(all) * tick
}

// pfKthread is PF_KTHREAD in the flags field of /proc/<pid>/stat.
const pfKthread = 0x00200000

// kernelThreadsCPU sums the CPU time of all kernel threads.
func kernelThreadsCPU() time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var ticks int64
	for _, e := range entries {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		raw, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		s := string(raw)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); flags is field 9, utime 14, stime 15
		if len(f) < 13 {
			continue
		}
		flags, _ := strconv.ParseUint(f[6], 10, 64)
		if flags&pfKthread == 0 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + st
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// ownCPU is the CPU time of this process and its reaped children (crane).
func ownCPU() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano())
}

// helpers are the supporting servers the benchmark runs besides the one under test (the
// mirror's upstream, the copy source and destination): their CPU is part of the
// benchmark, not background load.
var helpers struct {
	mu sync.Mutex
	ts []*target
}

func addHelper(t *target) {
	helpers.mu.Lock()
	defer helpers.mu.Unlock()
	helpers.ts = append(helpers.ts, t)
}

func removeHelper(t *target) {
	helpers.mu.Lock()
	defer helpers.mu.Unlock()
	for i, h := range helpers.ts {
		if h == t {
			helpers.ts = append(helpers.ts[:i], helpers.ts[i+1:]...)
			return
		}
	}
}

// helperCPU returns each running helper's CPU time so far.
func helperCPU() map[*target]time.Duration {
	helpers.mu.Lock()
	defer helpers.mu.Unlock()
	m := make(map[*target]time.Duration, len(helpers.ts))
	for _, h := range helpers.ts {
		m[h] = h.cpu()
	}
	return m
}

// window measures one figure's window: the server's CPU, ours and everyone else's.
type window struct {
	t                         *target
	start                     time.Time
	srv0, own0, busy0, total0 time.Duration
	helpers0                  map[*target]time.Duration
}

func openWindow(t *target) *window {
	w := &window{t: t}
	w.busy0, w.total0 = machineCPU()
	w.helpers0 = helperCPU()
	w.srv0, w.own0, w.start = t.cpu(), ownCPU(), time.Now()
	return w
}

// close returns the elapsed time and the server's CPU time, and books the rest.
func (w *window) close(label string) (elapsed, server time.Duration) {
	elapsed = time.Since(w.start)
	server = w.t.cpu() - w.srv0
	own := ownCPU() - w.own0
	var help time.Duration
	for h, c := range helperCPU() {
		if c0, ok := w.helpers0[h]; ok && h != w.t {
			help += c - c0
		}
	}
	busy, total := machineCPU()
	other := (busy - w.busy0) - server - own - help
	background.add(label, other, total-w.total0)
	return elapsed, server
}

// backgroundLoad accumulates the CPU used by other processes during measurements.
type backgroundLoad struct {
	mu        sync.Mutex
	other     time.Duration
	capacity  time.Duration
	worst     float64
	worstName string
}

var background backgroundLoad

func (b *backgroundLoad) add(label string, other, capacity time.Duration) {
	if capacity <= 0 {
		return
	}
	other = max(other, 0)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.other += other
	b.capacity += capacity
	if f := float64(other) / float64(capacity); f > b.worst {
		b.worst, b.worstName = f, label
	}
}

func (b *backgroundLoad) summary() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.capacity == 0 {
		return ""
	}
	worst := ""
	if b.worstName != "" {
		worst = " (" + b.worstName + ")"
	}
	return fmt.Sprintf("CPU used by other processes during the measured windows: %.0f%% of the machine on average, %.0f%% at worst%s%s",
		100*float64(b.other)/float64(b.capacity), 100*b.worst, worst, busyHint(float64(b.other)/float64(b.capacity)))
}

func busyHint(f float64) string {
	if f > 0.1 {
		return " -- the machine was shared; rerun on a quiet machine for clean figures"
	}
	return ""
}

// idleCheck samples the machine for a second before the run.
func idleCheck() float64 {
	b0, t0 := machineCPU()
	time.Sleep(time.Second)
	b1, t1 := machineCPU()
	if t1 <= t0 {
		return 0
	}
	return float64(b1-b0) / float64(t1-t0)
}
