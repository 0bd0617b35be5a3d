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

// row is one figure: each registry's value, the ratios of Berth to its peers
// (Distribution, zot when it ran, and the best of them), and the target when the issue
// sets one.
type row struct {
	Section string  `json:"section"`
	Figure  string  `json:"figure"`
	Unit    string  `json:"unit"`
	Berth   float64 `json:"berth"`        // NaN: not measured
	Dist    float64 `json:"distribution"` // NaN: not measured
	Zot     float64 `json:"zot"`          // NaN: not measured
	Target  string  `json:"target,omitempty"`
	// Verdict is "PASS" or "MISS" when a target applies and both needed values exist.
	Verdict string `json:"verdict,omitempty"`
	// Table names a table other than the registry table (see tables); its rows carry
	// their values in Values and leave Berth and Distribution unset.
	Table  string             `json:"table,omitempty"`
	Values map[string]float64 `json:"values,omitempty"`
	// check decides the verdict from the values; needsDist when it compares with Distribution.
	check     func(b, d float64) bool
	needsDist bool
}

// tableSpec is a table other than the registry table: its value columns (keys of
// row.Values, in order, with their headings), the ratios it prints, and the heading of
// its target column. Verdicts compare the first column with the second.
type tableSpec struct {
	title       string
	cols        []string
	labels      []string
	ratios      [][2]int
	targetLabel string
}

// tables in the order they are printed after the registry table.
var tables = []struct {
	key  string
	spec tableSpec
}{
	{"replication", tableSpec{
		title:       "Replication Berth -> Berth (a push rule) vs cric cp and crane copy of the same images, one after the other (seconds: below 1x is faster; bytes: the destination's request bytes per unique byte of the set)",
		cols:        []string{"replication", "cric", "crane"},
		labels:      []string{"replication", "cric cp", "crane copy"},
		ratios:      [][2]int{{0, 1}, {0, 2}},
		targetLabel: "target",
	}},
	{"hf", tableSpec{
		title:       "Hugging Face mirror: huggingface_hub's snapshot_download through Berth vs directly from the (loopback, in-memory) Hub and CDN (MB/s: above 1x is faster)",
		cols:        []string{"berth", "direct"},
		labels:      []string{"Berth", "direct"},
		ratios:      [][2]int{{0, 1}},
		targetLabel: "target",
	}},
	{"scan", tableSpec{
		title:       "Vulnerability scanning: Trivy through Berth (jobs, SBOMs kept) vs trivy image run from outside on each image, same Trivy and database (seconds: below 1x is faster)",
		cols:        []string{"berth", "trivy"},
		labels:      []string{"Berth", "trivy image"},
		ratios:      [][2]int{{0, 1}},
		targetLabel: "target",
	}},
	{"ui", tableSpec{
		title:       "Web UI (Berth only: Distribution has no UI) — page time in ms",
		cols:        []string{"p95", "p50"},
		labels:      []string{"p95", "p50"},
		targetLabel: "target",
	}},
	{"copy", tableSpec{
		title:       "Copy between two local Berth registries: cric cp vs crane copy vs skopeo copy (seconds: below 1x is faster; MB/s: above 1x is faster)",
		cols:        []string{"cric", "crane", "skopeo"},
		labels:      []string{"cric", "crane", "skopeo"},
		ratios:      [][2]int{{0, 1}, {0, 2}},
		targetLabel: "target (cric)",
	}},
}

func tableByKey(key string) (tableSpec, bool) {
	for _, t := range tables {
		if t.key == key {
			return t.spec, true
		}
	}
	return tableSpec{}, false
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
	x := &row{Section: section, Figure: figure, Unit: unit, Berth: nan, Dist: nan, Zot: nan}
	if v, ok := vals["berth"]; ok {
		x.Berth = v
	}
	if v, ok := vals["distribution"]; ok {
		x.Dist = v
	}
	if v, ok := vals["zot"]; ok {
		x.Zot = v
	}
	r.rows = append(r.rows, x)
	return x
}

// addTo records a figure of another table; vals maps its column keys to values.
func (r *results) addTo(table, section, figure, unit string, vals map[string]float64) *row {
	x := &row{Section: section, Figure: figure, Unit: unit, Berth: nan, Dist: nan, Zot: nan, Table: table, Values: map[string]float64{}}
	for k, v := range vals {
		x.Values[k] = v
	}
	r.rows = append(r.rows, x)
	return x
}

// pair is the two values a verdict compares: Berth and Distribution, or another table's
// first two columns.
func (x *row) pair() (float64, float64) {
	if x.Table == "" {
		return x.Berth, x.Dist
	}
	spec, _ := tableByKey(x.Table)
	get := func(i int) float64 {
		if i < len(spec.cols) {
			if v, ok := x.Values[spec.cols[i]]; ok {
				return v
			}
		}
		return nan
	}
	return get(0), get(1)
}

// target sets the row's target and how to check it.
func (x *row) target(desc string, check func(b, d float64) bool) *row {
	x.Target, x.check = desc, check
	return x
}

func (x *row) verdict() string {
	b, d := x.pair()
	if x.check == nil || math.IsNaN(b) {
		return ""
	}
	if x.needsDist && math.IsNaN(d) {
		return ""
	}
	if x.check(b, d) {
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

// relativeAtMost sets a target relative to the second value: first <= k * second.
func (x *row) relativeAtMost(desc string, k float64) *row {
	x.Target, x.needsDist = desc, true
	x.check = func(b, d float64) bool { return b <= k*d }
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

// lowerIsBetter reports whether a smaller value of unit is the better one (times, CPU,
// memory, failures, upstream traffic); rates, speeds and shares are better larger.
func lowerIsBetter(unit string) bool {
	switch {
	case unit == "s", unit == "ms", unit == "MiB", unit == "requests", unit == "x image":
		return true
	case strings.HasPrefix(unit, "CPU "):
		return true
	}
	return false
}

// bestPeer is the better of Distribution's and zot's values for the row's unit (NaN
// when neither was measured).
func (x *row) bestPeer() float64 {
	best := nan
	for _, v := range []float64{x.Dist, x.Zot} {
		switch {
		case math.IsNaN(v):
		case math.IsNaN(best), lowerIsBetter(x.Unit) && v < best, !lowerIsBetter(x.Unit) && v > best:
			best = v
		}
	}
	return best
}

// sectionOrder is the order sections are printed in.
var sectionOrder = []string{"throughput", "time", "request rate", "mirror", "gc", "registry CPU", "memory"}

// print writes the tables as Markdown (readable as is, pastable into an issue).
func (r *results) print(w io.Writer, header string) {
	var misses []string
	miss := func(x *row) {
		x.Verdict = x.verdict()
		if x.Verdict == "MISS" {
			misses = append(misses, x.Figure+" ("+x.Unit+")")
		}
	}
	var main []*row
	for _, x := range r.rows {
		if x.Table == "" {
			main = append(main, x)
		}
	}
	slices.SortStableFunc(main, func(a, b *row) int {
		return slices.Index(sectionOrder, a.Section) - slices.Index(sectionOrder, b.Section)
	})
	fmt.Fprintln(w)
	fmt.Fprint(w, header)
	if len(main) > 0 {
		// zot's columns appear when zot ran: its value, Berth/zot, and Berth over the
		// better of the two peers for the row's unit.
		zot := slices.ContainsFunc(main, func(x *row) bool { return !math.IsNaN(x.Zot) })
		head := []string{"figure", "unit", "Berth", "Distribution", "Berth/Dist"}
		if zot {
			head = []string{"figure", "unit", "Berth", "Distribution", "zot", "Berth/Dist", "Berth/zot", "Berth/best peer"}
		}
		head = append(head, "target (Berth)", "verdict")
		cells := [][]string{head}
		section := ""
		for _, x := range main {
			miss(x)
			if x.Section != section {
				section = x.Section
				c := make([]string, len(head))
				c[0] = "**" + section + "**"
				cells = append(cells, c)
			}
			c := []string{x.Figure, x.Unit, fmtVal(x.Berth), fmtVal(x.Dist), fmtRatio(x.Berth, x.Dist)}
			if zot {
				c = []string{x.Figure, x.Unit, fmtVal(x.Berth), fmtVal(x.Dist), fmtVal(x.Zot),
					fmtRatio(x.Berth, x.Dist), fmtRatio(x.Berth, x.Zot), fmtRatio(x.Berth, x.bestPeer())}
			}
			cells = append(cells, append(c, x.Target, x.Verdict))
		}
		fmt.Fprintln(w)
		printCells(w, cells, len(head)-4)
	}
	for _, tb := range tables {
		var rows []*row
		for _, x := range r.rows {
			if x.Table == tb.key {
				rows = append(rows, x)
			}
		}
		if len(rows) == 0 {
			continue
		}
		spec := tb.spec
		head := append([]string{"figure", "unit"}, spec.labels...)
		for _, p := range spec.ratios {
			head = append(head, spec.labels[p[0]]+"/"+spec.labels[p[1]])
		}
		head = append(head, spec.targetLabel, "verdict")
		cells := [][]string{head}
		for _, x := range rows {
			miss(x)
			c := []string{x.Figure, x.Unit}
			val := func(i int) float64 {
				if v, ok := x.Values[spec.cols[i]]; ok {
					return v
				}
				return nan
			}
			for i := range spec.cols {
				c = append(c, fmtVal(val(i)))
			}
			for _, p := range spec.ratios {
				c = append(c, fmtRatio(val(p[0]), val(p[1])))
			}
			cells = append(cells, append(c, x.Target, x.Verdict))
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, spec.title)
		fmt.Fprintln(w)
		printCells(w, cells, len(spec.cols)+len(spec.ratios))
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

// printCells prints a Markdown table: two text columns, numeric columns right-aligned,
// then text columns.
func printCells(w io.Writer, cells [][]string, numeric int) {
	width := make([]int, len(cells[0]))
	for _, c := range cells {
		for i, v := range c {
			width[i] = max(width[i], utf8.RuneCountInString(v))
		}
	}
	isNum := func(i int) bool { return i >= 2 && i < 2+numeric }
	line := func(c []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, v := range c {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(v))
			if isNum(i) {
				b.WriteString(" " + pad + v + " |") // numbers: right-aligned
			} else {
				b.WriteString(" " + v + pad + " |") // text: left-aligned
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(cells[0])
	sep := make([]string, len(width))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
		if isNum(i) {
			sep[i] = sep[i][:width[i]-1] + ":"
		}
	}
	line(sep)
	for _, c := range cells[1:] {
		line(c)
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
		if math.IsNaN(c.Zot) {
			c.Zot = -1
		}
		if c.Values != nil {
			c.Values = map[string]float64{}
			for k, v := range x.Values {
				if math.IsNaN(v) {
					v = -1
				}
				c.Values[k] = v
			}
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
