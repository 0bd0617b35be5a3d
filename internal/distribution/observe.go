package distribution

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/proxy"
)

// Metrics are the API's Prometheus instruments.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytesOut *prometheus.CounterVec
	bytesIn  *prometheus.CounterVec
	inflight prometheus.Gauge
}

// NewMetrics registers the API's instruments on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_http_requests_total", Help: "Registry API requests by route, method and status.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "berth_http_request_duration_seconds", Help: "Registry API request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60},
		}, []string{"route", "method"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_http_response_bytes_total", Help: "Response body bytes by route.",
		}, []string{"route"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_http_request_bytes_total", Help: "Request body bytes by route.",
		}, []string{"route"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_http_requests_in_flight", Help: "Registry API requests being served.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.bytesOut, m.bytesIn, m.inflight)
	return m
}

type reqInfoKey struct{}

// reqInfo is filled in by handlers for the access log and metrics.
type reqInfo struct {
	route   string
	errCode string
	cache   proxy.CacheStatus // how the mirror served it, if it did
}

func setRouteLabel(r *http.Request, route string) {
	if info, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		info.route = route
	}
}

func setError(r *http.Request, code string) {
	if info, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		info.errCode = code
	}
}

type countingBody struct {
	rc io.ReadCloser
	n  int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n += int64(n)
	return n, err
}
func (c *countingBody) Close() error { return c.rc.Close() }

type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(p []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(p)
	rw.bytes += int64(n)
	return n, err
}

// ReadFrom keeps sendfile available through the wrapper.
func (rw *recorder) ReadFrom(src io.Reader) (int64, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := rw.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(rw.ResponseWriter, src)
	}
	rw.bytes += n
	return n, err
}

func (rw *recorder) Flush() {
	if f, ok := rw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (rw *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := rw.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}

func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// Status is the response status written so far (200 when only a body was).
func (rw *recorder) Status() int {
	if rw.status == 0 {
		return http.StatusOK
	}
	return rw.status
}

// Observe wraps h with the access log and metrics.
func Observe(h http.Handler, m *Metrics, log *slog.Logger, accessLog bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{route: "other"}
		r = r.WithContext(proxy.WithCacheStatus(context.WithValue(r.Context(), reqInfoKey{}, info), &info.cache))
		var body *countingBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &countingBody{rc: r.Body}
			r.Body = body
		}
		rec := &recorder{ResponseWriter: w}
		m.inflight.Inc()
		defer func() {
			m.inflight.Dec()
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			elapsed := time.Since(start)
			code := strconv.Itoa(rec.status)
			m.requests.WithLabelValues(info.route, r.Method, code).Inc()
			m.duration.WithLabelValues(info.route, r.Method).Observe(elapsed.Seconds())
			m.bytesOut.WithLabelValues(info.route).Add(float64(rec.bytes))
			var in int64
			if body != nil {
				in = body.n
				m.bytesIn.WithLabelValues(info.route).Add(float64(in))
			}
			if accessLog {
				attrs := []slog.Attr{
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.Int("status", rec.status),
					slog.Int64("bytes_out", rec.bytes),
					slog.Int64("bytes_in", in),
					slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
					slog.String("remote", r.RemoteAddr),
					slog.String("user_agent", r.UserAgent()),
				}
				if r.URL.RawQuery != "" {
					if ns := r.URL.Query().Get("ns"); ns != "" {
						attrs = append(attrs, slog.String("ns", ns))
					}
				}
				if c := info.cache.Get(); c != "" {
					attrs = append(attrs, slog.String("cache", c))
				}
				if info.errCode != "" {
					attrs = append(attrs, slog.String("error_code", info.errCode))
				}
				log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
			}
		}()
		h.ServeHTTP(rec, r)
	})
}
