package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// row is one figure: both registries' values, the ratio Berth/Distribution, and the
// target when the issue sets one.
type row struct {
	Section string  `json:"section"`
	Figure  string  `json:"figure"`
	Unit    string  `json:"unit"`
	Berth   float64 `json:"berth"`        // NaN: not measured
	Dist    float64 `json:"distribution"` // NaN: not measured
	Target  string  `json:"target,omitempty"`
	// Verdict is "PASS" or "MISS" when a target applies and both needed values exist.
	Verdict string `json:"verdict,omitempty"`
	// check decides the verdict from the values; needsDist when it compares with Distribution.
	check     func(b, d float64) bool
	needsDist bool
}

type results struct {
	rows  []*row
	notes []string
}

// note adds a line printed under the table.
func (r *results) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func newResults() *results { return &results{} }

var nan = math.NaN()

// add records a figure; vals maps target name to value.
func (r *results) add(section, figure, unit string, vals map[string]float64) *row {
	x := &row{Section: section, Figure: figure, Unit: unit, Berth: nan, Dist: nan}
	if v, ok := vals["berth"]; ok {
		x.Berth = v
	}
	if v, ok := vals["distribution"]; ok {
		x.Dist = v
	}
	r.rows = append(r.rows, x)
	return x
}

// target sets the row's target and how to check it.
func (x *row) target(desc string, check func(b, d float64) bool) *row {
	x.Target, x.check = desc, check
	return x
}

func (x *row) verdict() string {
	if x.check == nil || math.IsNaN(x.Berth) {
		return ""
	}
	if x.needsDist && math.IsNaN(x.Dist) {
		return ""
	}
	if x.check(x.Berth, x.Dist) {
		return "PASS"
	}
	return "MISS"
}

// relative sets a target relative to Distribution: Berth >= k * Distribution.
func (x *row) relative(desc string, k float64) *row {
	x.Target, x.needsDist = desc, true
	x.check = func(b, d float64) bool { return b >= k*d }
	return x
}

func atMost(v float64) func(b, d float64) bool  { return func(b, _ float64) bool { return b <= v } }
func atLeast(v float64) func(b, d float64) bool { return func(b, _ float64) bool { return b >= v } }

func fmtVal(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v == 0:
		return "0"
	case math.Abs(v) >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case math.Abs(v) >= 0.01:
		return strconv.FormatFloat(v, 'f', 3, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func fmtRatio(b, d float64) string {
	if math.IsNaN(b) || math.IsNaN(d) || d == 0 {
		return "-"
	}
	return strconv.FormatFloat(b/d, 'f', 2, 64) + "x"
}

// sectionOrder is the order sections are printed in.
var sectionOrder = []string{"throughput", "time", "request rate", "registry CPU", "memory"}

// print writes the table as Markdown (readable as is, pastable into an issue).
func (r *results) print(w io.Writer, header string) {
	rows := slices.Clone(r.rows)
	slices.SortStableFunc(rows, func(a, b *row) int {
		return slices.Index(sectionOrder, a.Section) - slices.Index(sectionOrder, b.Section)
	})
	cells := [][]string{{"figure", "unit", "Berth", "Distribution", "Berth/Dist", "target (Berth)", "verdict"}}
	var misses []string
	section := ""
	for _, x := range rows {
		x.Verdict = x.verdict()
		if x.Section != section {
			section = x.Section
			cells = append(cells, []string{"**" + section + "**", "", "", "", "", "", ""})
		}
		cells = append(cells, []string{x.Figure, x.Unit, fmtVal(x.Berth), fmtVal(x.Dist), fmtRatio(x.Berth, x.Dist), x.Target, x.Verdict})
		if x.Verdict == "MISS" {
			misses = append(misses, x.Figure+" ("+x.Unit+")")
		}
	}
	width := make([]int, len(cells[0]))
	for _, c := range cells {
		for i, v := range c {
			width[i] = max(width[i], utf8.RuneCountInString(v))
		}
	}
	line := func(c []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, v := range c {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(v))
			if i == 0 || i == 1 || i >= 5 {
				b.WriteString(" " + v + pad + " |") // text: left-aligned
			} else {
				b.WriteString(" " + pad + v + " |") // numbers: right-aligned
			}
		}
		fmt.Fprintln(w, b.String())
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, header)
	fmt.Fprintln(w)
	line(cells[0])
	sep := make([]string, len(width))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
		if i >= 2 && i <= 4 {
			sep[i] = sep[i][:width[i]-1] + ":"
		}
	}
	line(sep)
	for _, c := range cells[1:] {
		line(c)
	}
	fmt.Fprintln(w)
	for _, n := range r.notes {
		fmt.Fprintln(w, "* "+n)
	}
	if len(misses) > 0 {
		fmt.Fprintf(w, "* targets missed (%d): %s\n", len(misses), strings.Join(misses, "; "))
	} else {
		fmt.Fprintln(w, "* all measured targets met")
	}
}

func (r *results) writeJSON(path string) error {
	type out struct {
		Rows  []*row   `json:"rows"`
		Notes []string `json:"notes"`
	}
	// NaN is not JSON; use -1 for "not measured".
	rows := make([]*row, len(r.rows))
	for i, x := range r.rows {
		c := *x
		c.check = nil
		if math.IsNaN(c.Berth) {
			c.Berth = -1
		}
		if math.IsNaN(c.Dist) {
			c.Dist = -1
		}
		rows[i] = &c
	}
	raw, err := json.MarshalIndent(out{rows, r.notes}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(raw, '\n'), 0o644)
}

// parseSize reads 1GiB, 256MiB, 64KiB, 1G, 512M, 4096.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func fmtSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }

func cpuPerGB(cpu time.Duration, bytes int64) float64 { return cpu.Seconds() / (float64(bytes) / 1e9) }
