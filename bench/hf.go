package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/internal/hf/hubtest"
)

// The hf phase (issue 16) downloads a model the way huggingface_hub's snapshot_download
// does — the revision's file list, then per file a HEAD and a GET, 8 files at a time
// (its max_workers) — directly from a test Hub and CDN on loopback (serving from memory)
// and through Berth's Hugging Face mirror, cold and warm; then 10 clients at once
// through a fresh Berth, counting what the CDN sent.

const (
	hfRepo    = "org/model"
	hfCommit  = "0123456789abcdef0123456789abcdef01234567"
	hfWorkers = 8 // huggingface_hub's snapshot_download max_workers
)

// hfModel is a model of four weight files (LFS) making up total, and small files.
func hfModel(total int64) *hubtest.Repo {
	files := []hubtest.File{
		{Path: "config.json", Data: []byte(`{"model_type":"bench","hidden_size":64}`)},
		{Path: "tokenizer.json", Data: randBytes(21, 2<<20)},
		{Path: "README.md", Data: []byte("# bench model\n")},
	}
	for i := range 4 {
		files = append(files, hubtest.File{Path: fmt.Sprintf("model-%05d-of-00004.safetensors", i+1), Data: randBytes(uint64(30+i), total/4), LFS: true})
	}
	return &hubtest.Repo{Type: "model", ID: hfRepo, Refs: map[string]string{"main": hfCommit}, Commits: map[string][]hubtest.File{hfCommit: files}}
}

// snapshot downloads every file of the model's main revision from base (a Hub API
// root) and returns the bytes received.
func snapshot(ctx context.Context, hc *http.Client, base string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/models/"+hfRepo+"/revision/main", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	var info struct {
		SHA      string `json:"sha"`
		Siblings []struct {
			RFilename string `json:"rfilename"`
		} `json:"siblings"`
	}
	err = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || info.SHA == "" {
		return 0, fmt.Errorf("model info from %s: %s %v", base, resp.Status, err)
	}
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	var total atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, hfWorkers)
	for range hfWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(info.Siblings) {
					return
				}
				url := base + "/" + hfRepo + "/resolve/" + info.SHA + "/" + info.Siblings[i].RFilename
				// The client's HEAD does not follow redirects; it reads the metadata.
				head, _ := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
				hr, err := noRedirect.Do(head)
				if err != nil {
					errs <- err
					return
				}
				hr.Body.Close()
				get, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				gr, err := hc.Do(get)
				if err != nil {
					errs <- err
					return
				}
				n, err := io.Copy(io.Discard, gr.Body)
				gr.Body.Close()
				if err != nil || gr.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("GET %s: %s %v", url, gr.Status, err)
					return
				}
				total.Add(n)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return total.Load(), <-errs
}

func (b *bench) phaseHF(ctx context.Context) error {
	model := hfModel(b.o.hfSize)
	var size, lfs int64
	for _, f := range model.Commits[hfCommit] {
		size += int64(len(f.Data))
		if f.LFS {
			lfs += int64(len(f.Data))
		}
	}
	hub := hubtest.New(model)
	defer hub.Close()
	hc := &http.Client{Timeout: 30 * time.Minute}
	start := func(name string) (*target, error) {
		cfg := "hf:\n  enabled: true\n  public: true\n  upstream: " + hub.Hub.URL + "\n  allowPrivateRedirects: true\n"
		return b.startBerthWith(ctx, berthSpec{name: "berth", logName: name, data: filepath.Join(b.dir, name), config: cfg, noSettle: true})
	}
	timed := func(base string) (float64, error) {
		t0 := time.Now()
		n, err := snapshot(ctx, hc, base)
		if err != nil {
			return 0, err
		}
		if n != size {
			return 0, fmt.Errorf("snapshot from %s: %d bytes, want %d", base, n, size)
		}
		return float64(size) / 1e6 / time.Since(t0).Seconds(), nil
	}
	var direct, cold, warm float64
	for rep := range b.o.reps {
		t, err := start(fmt.Sprintf("berth-hf-%d", rep))
		if err != nil {
			return err
		}
		d, err := timed(hub.Hub.URL)
		if err != nil {
			t.stop()
			return err
		}
		c, err := timed(t.base.String() + "/hf")
		if err != nil {
			t.stop()
			return err
		}
		w, err := timed(t.base.String() + "/hf")
		t.stop()
		if err != nil {
			return err
		}
		direct, cold, warm = max(direct, d), max(cold, c), max(warm, w)
	}
	section := fmt.Sprintf("Hugging Face mirror: snapshot_download of a %s model (%d files, %d at a time)", fmtSize(size), len(model.Commits[hfCommit]), hfWorkers)
	limit, err := b.pushLimit(ctx)
	if err != nil {
		return err
	}
	b.res.addTo("hf", section, fmt.Sprintf("cold, through a fresh Berth (push pipeline limit %.0f MB/s)", limit), "MB/s",
		map[string]float64{"berth": cold, "direct": direct}).
		target("≥ 75 % of the pipeline limit", func(v, _ float64) bool { return v >= 0.75*limit })
	b.res.addTo("hf", section, "warm, from Berth's cache", "MB/s", map[string]float64{"berth": warm, "direct": direct}).
		target("≥ 95 % of direct", func(v, d float64) bool { return v >= 0.95*d })

	// Ten clients at once through a fresh Berth: what did the CDN send?
	t, err := start("berth-hf-concurrent")
	if err != nil {
		return err
	}
	defer t.stop()
	hub.ResetLog()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n, err := snapshot(ctx, hc, t.base.String()+"/hf"); err != nil || n != size {
				errs <- fmt.Errorf("concurrent snapshot: %d bytes, %v", n, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	b.res.addTo("hf", section, "10 concurrent cold clients: bytes the CDN sent per byte of LFS files", "x",
		map[string]float64{"berth": float64(hub.CDNBytes()) / float64(lfs)}).
		target("1.0x", func(v, _ float64) bool { return v <= 1.001 })
	return nil
}
