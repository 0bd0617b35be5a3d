package cric

// Output: results go to stdout, as text for people or, with --json, as one JSON document
// per command for scripts. Progress and diagnostics go to stderr (progress.go).

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Printer writes command results.
type Printer struct {
	w    io.Writer
	json bool
}

// JSONMode reports whether --json was given.
func (p *Printer) JSONMode() bool { return p.json }

// JSON writes v as indented JSON.
func (p *Printer) JSON(v any) error {
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Linef writes one line.
func (p *Printer) Linef(format string, args ...any) {
	fmt.Fprintf(p.w, format+"\n", args...)
}

// Lines writes each string on its own line.
func (p *Printer) Lines(ls []string) {
	for _, l := range ls {
		fmt.Fprintln(p.w, l)
	}
}

// Table writes rows with aligned columns.
func (p *Printer) Table(rows [][]string) {
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

// Result is what a transfer did for one image.
type Result struct {
	Source      string   `json:"source"`
	Destination string   `json:"destination"`
	Digest      string   `json:"digest"`
	MediaType   string   `json:"mediaType"`
	Size        int64    `json:"size"` // manifests and blobs, each counted once
	Platforms   []string `json:"platforms,omitempty"`
	Referrers   int      `json:"referrers,omitempty"`
}

// PrintResults writes transfer results, one "source → destination@digest" line per
// image (for save, the destination is the bundle), or JSON.
func (p *Printer) PrintResults(rs []*Result) error {
	if p.json {
		if rs == nil {
			rs = []*Result{}
		}
		return p.JSON(rs)
	}
	for _, r := range rs {
		line := r.Destination
		if !strings.Contains(line, "@") {
			line += "@" + r.Digest
		}
		if r.Source != "" {
			line = r.Source + " → " + line
		}
		if r.Referrers > 0 {
			line += fmt.Sprintf(" (+%d referrers)", r.Referrers)
		}
		p.Linef("%s", line)
	}
	return nil
}

// humanBytes formats a byte count in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// PrintInspection writes an inspection as text, or JSON.
func (p *Printer) PrintInspection(in *Inspection) error {
	if p.json {
		return p.JSON(in)
	}
	rows := [][]string{
		{"Reference:", in.Reference},
		{"Digest:", in.Digest},
		{"Media type:", in.MediaType},
	}
	if in.ArtifactType != "" {
		rows = append(rows, []string{"Artifact type:", in.ArtifactType})
	}
	size := humanBytes(in.Size)
	if len(in.Platforms) > 0 {
		size += fmt.Sprintf(" (%d manifests, shared blobs counted once)", len(in.Platforms))
	} else if len(in.Layers) > 0 {
		size += fmt.Sprintf(" (%d layers)", len(in.Layers))
	}
	rows = append(rows, []string{"Size:", size})
	if in.Subject != nil {
		rows = append(rows, []string{"Subject:", in.Subject.Digest.String()})
	}
	if cf := in.Config; cf != nil {
		rows = append(rows, []string{"Config:", cf.Digest + "  " + cf.MediaType})
		if cf.OS != "" {
			plat := cf.OS + "/" + cf.Architecture
			if cf.Variant != "" {
				plat += "/" + cf.Variant
			}
			rows = append(rows, []string{"Platform:", plat})
		}
		for _, kv := range [][2]string{
			{"Created:", cf.Created}, {"Entrypoint:", strings.Join(cf.Entrypoint, " ")}, {"Cmd:", strings.Join(cf.Cmd, " ")},
			{"WorkingDir:", cf.WorkingDir}, {"User:", cf.User},
		} {
			if kv[1] != "" {
				rows = append(rows, []string{kv[0], kv[1]})
			}
		}
		for _, e := range cf.Env {
			rows = append(rows, []string{"Env:", e})
		}
		for _, k := range sortedKeys(cf.Labels) {
			rows = append(rows, []string{"Label:", k + "=" + cf.Labels[k]})
		}
	}
	for _, k := range sortedKeys(in.Annotations) {
		rows = append(rows, []string{"Annotation:", k + "=" + in.Annotations[k]})
	}
	p.Table(rows)
	if len(in.Platforms) > 0 {
		p.Linef("Platforms:")
		var t [][]string
		for _, pl := range in.Platforms {
			t = append(t, []string{"  " + pl.Platform, pl.Digest, humanBytes(pl.Size)})
		}
		p.Table(t)
	}
	if len(in.Layers) > 0 {
		p.Linef("Layers:")
		var t [][]string
		for _, l := range in.Layers {
			t = append(t, []string{"  " + l.Digest.String(), humanBytes(l.Size), string(l.MediaType)})
		}
		p.Table(t)
	}
	p.Linef("Referrers:")
	if len(in.Referrers) == 0 {
		p.Linef("  (none)")
	}
	var t [][]string
	for _, r := range in.Referrers {
		at := r.ArtifactType
		if at == "" {
			at = string(r.MediaType)
		}
		t = append(t, []string{"  " + at, r.Digest.String(), humanBytes(r.Size)})
	}
	p.Table(t)
	return nil
}
