package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// nginxConf is the load balancer: round robin over each registry's replicas, request and
// response bodies streamed (no buffering, no size limit), the client's Host passed on,
// keep-alive to the replicas, no access log (as for the registries).
const nginxConf = `{{user}}worker_processes auto;
pid {{dir}}/nginx.pid;
error_log {{dir}}/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path {{dir}}/nginx-tmp/client_body;
    proxy_temp_path {{dir}}/nginx-tmp/proxy;
    fastcgi_temp_path {{dir}}/nginx-tmp/fastcgi;
    uwsgi_temp_path {{dir}}/nginx-tmp/uwsgi;
    scgi_temp_path {{dir}}/nginx-tmp/scgi;
{{upstreams}}}
`

const nginxServer = `    upstream {{name}} {
{{servers}}        keepalive 32;
    }
    server {
        listen {{listen}};
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
{{buffer}}        proxy_http_version 1.1;
        location / {
            proxy_pass http://{{name}};
            proxy_set_header Host $http_host;
            proxy_set_header Connection "";
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }
    }
`

// lb is one nginx listener in front of a set of replicas.
type lb struct {
	name     string
	host     string
	backends []*server
}

// startNginx runs one nginx (foreground, dies with the benchmark) serving the given
// load balancers, and waits until each answers.
func (b *bench) startNginx(ctx context.Context, lbs []*lb) (*proc, error) {
	var ups strings.Builder
	for _, l := range lbs {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		l.host = addr
		var servers strings.Builder
		for _, s := range l.backends {
			fmt.Fprintf(&servers, "        server %s;\n", s.host)
		}
		// With proxy_buffering off, proxy_buffer_size is the most nginx reads from a
		// replica at a time; proxy_buffers must be consistent with it.
		buffer := ""
		if sz := b.o.nginxBuffer; sz != "" && sz != "default" {
			buffer = fmt.Sprintf("        proxy_buffer_size %s;\n        proxy_buffers 4 %s;\n        proxy_busy_buffers_size %s;\n", sz, sz, sz)
		}
		ups.WriteString(strings.NewReplacer("{{name}}", l.name, "{{servers}}", servers.String(), "{{listen}}", addr,
			"{{buffer}}", buffer).Replace(nginxServer))
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n" // workers may then use the scratch directory
	}
	if err := os.MkdirAll(filepath.Join(b.dir, "nginx-tmp"), 0o755); err != nil {
		return nil, err
	}
	conf := strings.NewReplacer("{{user}}", user, "{{dir}}", b.dir, "{{upstreams}}", ups.String()).Replace(nginxConf)
	path := filepath.Join(b.dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	p, err := startProc(b.dir, "nginx", b.nginxBin, []string{"-p", b.dir, "-c", path, "-e", filepath.Join(b.dir, "nginx-error.log"), "-g", "daemon off;"}, cleanEnv())
	if err != nil {
		return nil, err
	}
	b.onStop(p.stop)
	for _, l := range lbs {
		if err := waitHTTP(ctx, p, "http://"+l.host+"/v2/", func(st int) bool { return st == 200 }, 30*time.Second); err != nil {
			return nil, err
		}
	}
	logf("nginx pid %d: %s", p.pid(), func() string {
		var s []string
		for _, l := range lbs {
			s = append(s, l.name+" on "+l.host)
		}
		return strings.Join(s, ", ")
	}())
	return p, nil
}

// phaseReplicas: -clients parallel pulls of the big blob from one replica (directly), and
// through nginx from two replicas, for Berth and for Distribution (a second Distribution
// on the same bucket is as stateless a replica as Berth's).
func (b *bench) phaseReplicas(ctx context.Context) error {
	big, err := b.ensureBig(ctx, b.targets()...)
	if err != nil {
		return err
	}
	berthB, err := b.startBerthReplica(ctx, "berth-b", "")
	if err != nil {
		return err
	}
	distB, err := b.startDist(ctx, "distribution-b", true)
	if err != nil {
		return err
	}
	lbs := []*lb{{name: "berth2", backends: []*server{b.berth, berthB}}, {name: "dist2", backends: []*server{b.dist, distB}}}
	ngx, err := b.startNginx(ctx, lbs)
	if err != nil {
		return err
	}
	nginxCPU := &treeCPU{root: func() int {
		if ngx.exited() {
			return 0
		}
		return ngx.pid()
	}}
	addHelper(nginxCPU)
	berthBoth := &sumMeter{ms: []cpuMeter{b.berth, berthB}}
	distBoth := &sumMeter{ms: []cpuMeter{b.dist, distB}}

	// The blob must be readable through every replica (shared database and bucket).
	for _, s := range []*server{berthB, distB} {
		if n, err := newRegClient(s.host).getCount(ctx, "/v2/"+bigRepo+"/blobs/"+big.digest, make([]byte, 1<<20)); err != nil || n != big.size {
			return fmt.Errorf("the big blob through %s: %d bytes, %v", s.name, n, err)
		}
	}
	type setup struct {
		key   string
		host  string
		reg   cpuMeter
		berth bool
	}
	setups := []setup{
		{"one-berth", b.berth.host, b.berth, true},
		{"two-berth-nginx", lbs[0].host, berthBoth, true},
		{"one-dist", b.dist.host, b.dist, false},
		{"two-dist-nginx", lbs[1].host, distBoth, false},
	}
	path := "/v2/" + bigRepo + "/blobs/" + big.digest
	total := big.size * int64(b.o.clients)
	times := map[string][]time.Duration{}
	sums := map[string][3]time.Duration{} // registry, backends, nginx
	b.berth.profileStart("replicas")
	defer b.berth.profileStop()
	for rep := range b.o.reps {
		order := setups
		if rep%2 == 1 {
			order = []setup{setups[2], setups[3], setups[0], setups[1]}
		}
		for _, s := range order {
			w := openWindow(s.reg, b.back, nginxCPU)
			err := parallelPull(ctx, s.host, path, big.size, b.o.clients)
			el, cpus := w.close(s.key + " parallel pull")
			if err != nil {
				return fmt.Errorf("%s: %w", s.key, err)
			}
			times[s.key] = append(times[s.key], el)
			c := sums[s.key]
			for i := range c {
				c[i] += cpus[i]
			}
			sums[s.key] = c
			logf("  %d parallel pulls #%d %s: %.2fs = %.0f MB/s, registry CPU %.2fs, S3+PG %.2fs, nginx %.2fs",
				b.o.clients, rep+1, s.key, el.Seconds(), mbps(total, el), cpus[0].Seconds(), cpus[1].Seconds(), cpus[2].Seconds())
		}
	}
	speed := func(key string) float64 { return mbps(total, median(times[key])) }
	gb := float64(total) * float64(b.o.reps) / 1e9
	cpuGB := func(key string, i int) float64 { return sums[key][i].Seconds() / gb }
	one := fmt.Sprintf("%d parallel pulls of the %s blob: one replica, direct", b.o.clients, fmtSize(big.size))
	two := fmt.Sprintf("%d parallel pulls of the %s blob: two replicas behind nginx", b.o.clients, fmtSize(big.size))
	b.res.add("scale-out", one, "MB/s", speed("one-berth"), speed("one-dist"))
	b.res.add("scale-out", two, "MB/s", speed("two-berth-nginx"), speed("two-dist-nginx"))
	b.res.add("scale-out", "aggregate pull: two replicas behind nginx / one replica", "x",
		speed("two-berth-nginx")/speed("one-berth"), speed("two-dist-nginx")/speed("one-dist"))
	b.res.add("registry CPU", one, "CPU s/GB", cpuGB("one-berth", 0), cpuGB("one-dist", 0))
	b.res.add("registry CPU", two+" (both replicas)", "CPU s/GB", cpuGB("two-berth-nginx", 0), cpuGB("two-dist-nginx", 0))
	b.res.add("registry CPU", two+": nginx", "CPU s/GB", cpuGB("two-berth-nginx", 2), cpuGB("two-dist-nginx", 2))
	b.res.add("S3 server + PostgreSQL CPU", one, "CPU s/GB", cpuGB("one-berth", 1), cpuGB("one-dist", 1))
	b.res.add("S3 server + PostgreSQL CPU", two, "CPU s/GB", cpuGB("two-berth-nginx", 1), cpuGB("two-dist-nginx", 1))
	b.res.note("scale-out: all processes (versitygw, PostgreSQL, both replicas, nginx, the %d clients) share the same %d CPUs, so a second replica adds no capacity here; the figure shows what the load balancer and a second replica cost, not what a second machine would add",
		b.o.clients, numCPU())
	return nil
}

// parallelPull GETs path on n connections at once and checks every body's length.
func parallelPull(ctx context.Context, host, path string, size int64, n int) error {
	c := newRegClient(host)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.getCount(ctx, path, make([]byte, 1<<20))
			if err == nil && got != size {
				err = fmt.Errorf("got %d bytes, want %d", got, size)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
