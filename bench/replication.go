package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The replication phase (issue 15) replicates -rpl-images images (four shared base
// layers of 10 MB each, plus a small layer of their own; about 2 GB nominal) from one
// Berth to another with a push rule, and copies the same set with cric cp and with
// crane copy into fresh Berths: time, and the bytes each destination received against
// the set's unique bytes (target 1.0x).

const (
	rplBases    = 4
	rplBaseSize = 10_000_000
	rplOwnSize  = 256 << 10
	rplRepos    = 10
)

// destBytes is the request body bytes a Berth received (its /metrics).
func destBytes(ctx context.Context, c *client) (float64, error) {
	m, err := c.metrics(ctx)
	if err != nil {
		return 0, err
	}
	sum, _ := sumPrefix(m, "berth_http_request_bytes_total{")
	return sum, nil
}

// dockerConfig writes a Docker config holding Basic credentials for host, for crane and
// cric reading the source.
func dockerConfig(dir, host, user, pass string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}}})
	return os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600)
}

func (b *bench) phaseReplication(ctx context.Context) error {
	n := b.o.rplImages
	authCfg := fmt.Sprintf("auth:\n  enabled: true\n  admin:\n    username: %s\n    password: %s\nevents:\n  webhooks:\n    allowPrivateTargets: true\n", scanAdmin, scanPassword)
	src, err := b.startBerthWith(ctx, berthSpec{name: "berth", logName: "berth-rpl-src", data: filepath.Join(b.dir, "rpl-src"), config: authCfg, noSettle: true})
	if err != nil {
		return err
	}
	defer src.stop()
	src.http.user, src.http.pass = scanAdmin, scanPassword
	if err := adminJSON(ctx, src.http, http.MethodPost, "/projects", map[string]any{"name": "team"}, nil, http.StatusCreated); err != nil {
		return err
	}
	bases := make([]scanLayer, rplBases)
	for i := range bases {
		d := randBytes(uint64(100+i), rplBaseSize)
		bases[i] = scanLayer{gz: d, diffID: digestOf(d)}
	}
	var refs []string
	var unique, nominal int64 = rplBases * rplBaseSize, 0
	for i := range n {
		own := randBytes(uint64(1000+i), rplOwnSize)
		repo := fmt.Sprintf("team/app-%02d", i%rplRepos)
		tag := fmt.Sprint(i)
		if _, err := pushScanImage(ctx, src.http, repo, tag, []scanLayer{bases[i%rplBases], {gz: own, diffID: digestOf(own)}}); err != nil {
			return err
		}
		refs = append(refs, repo+":"+tag)
		unique += rplOwnSize
		nominal += rplBaseSize + rplOwnSize
	}
	logf("replication: %d images in %d repositories, %s nominal, %s unique", n, rplRepos, fmtSize(nominal), fmtSize(unique))
	start := func(name string) (*target, error) {
		return b.startBerthWith(ctx, berthSpec{name: "berth", logName: name, data: filepath.Join(b.dir, name), noSettle: true})
	}

	// Replication: a push rule, run by hand, timed until its execution ends.
	dst, err := start("berth-rpl-dst")
	if err != nil {
		return err
	}
	defer dst.stop()
	var rule struct {
		ID int64 `json:"id"`
	}
	if err := adminJSON(ctx, src.http, http.MethodPost, "/replication/rules", map[string]any{"name": "bench", "direction": "push",
		"remote": map[string]any{"url": "http://" + dst.host}, "repositories": []string{"team/**"}, "enabled": true}, &rule, http.StatusCreated); err != nil {
		return err
	}
	before, err := destBytes(ctx, dst.http)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := adminJSON(ctx, src.http, http.MethodPost, fmt.Sprintf("/replication/rules/%d/run", rule.ID), nil, nil, http.StatusAccepted); err != nil {
		return err
	}
	var took time.Duration
	for deadline := time.Now().Add(30 * time.Minute); ; {
		var exs []struct {
			State  string `json:"state"`
			Copied int    `json:"copied"`
			Error  string `json:"error"`
		}
		if err := adminJSON(ctx, src.http, http.MethodGet, fmt.Sprintf("/replication/rules/%d/executions", rule.ID), nil, &exs, http.StatusOK); err != nil {
			return err
		}
		if len(exs) > 0 && exs[0].State != "running" {
			if exs[0].State != "succeeded" || exs[0].Copied != n {
				return fmt.Errorf("replication execution %s, %d of %d copied: %s", exs[0].State, exs[0].Copied, n, exs[0].Error)
			}
			took = time.Since(t0)
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replication of %d images not done after 30 minutes", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	after, err := destBytes(ctx, dst.http)
	if err != nil {
		return err
	}
	secs := map[string]float64{"replication": took.Seconds()}
	ratio := map[string]float64{"replication": (after - before) / float64(unique)}

	// The same set with cric cp and crane copy, one image after the other, each into a
	// fresh Berth.
	cric, err := b.buildBinary(ctx, "./cmd/cric", "cric")
	if err != nil {
		return err
	}
	crane, err := findTool(b.o.crane, "crane")
	if err != nil {
		return err
	}
	home := filepath.Join(b.dir, "rpl-home")
	if err := dockerConfig(filepath.Join(home, "docker"), src.host, scanAdmin, scanPassword); err != nil {
		return err
	}
	for _, tool := range []struct{ name, bin string }{{"cric", cric}, {"crane", crane}} {
		d, err := start("berth-rpl-" + tool.name)
		if err != nil {
			return err
		}
		before, err := destBytes(ctx, d.http)
		if err != nil {
			d.stop()
			return err
		}
		t0 := time.Now()
		for _, ref := range refs {
			args := []string{"cp", src.host + "/" + ref, d.host + "/" + ref}
			if tool.name == "crane" {
				args = []string{"copy", "--insecure", src.host + "/" + ref, d.host + "/" + ref}
			}
			cmd := exec.CommandContext(ctx, tool.bin, args...)
			cmd.Env = cleanEnv("HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, "docker"))
			if out, err := cmd.CombinedOutput(); err != nil {
				d.stop()
				return fmt.Errorf("%s %s: %v\n%s", tool.name, strings.Join(args, " "), err, out)
			}
		}
		secs[tool.name] = time.Since(t0).Seconds()
		after, err := destBytes(ctx, d.http)
		d.stop()
		if err != nil {
			return err
		}
		ratio[tool.name] = (after - before) / float64(unique)
	}
	fig := fmt.Sprintf("%d images, %d repositories, %s nominal, %s unique", n, rplRepos, fmtSize(nominal), fmtSize(unique))
	b.res.addTo("replication", "replication", fig, "s", secs)
	b.res.addTo("replication", "replication", fig+": bytes received per unique byte", "x", ratio).
		target("1.0x", func(v, _ float64) bool { return v <= 1.01 })
	return b.benchWebhooks(ctx, src, b.o.hookEvents)
}
