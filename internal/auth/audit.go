package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/berth-registry/berth/internal/meta"
)

// Bounds of an audit entry's fields, in bytes. Requests carry attacker-chosen names and
// references; unbounded, a few hundred anonymous requests grew the database by
// megabytes.
const (
	maxAuditActor    = 256
	maxAuditType     = 32
	maxAuditAction   = 64
	maxAuditResource = 512
	maxAuditResult   = 16
	maxAuditRemote   = 64
	maxAuditDetail   = 1024
)

// Tuning of the writer. collapseWindow is how long identical repeatable entries are
// folded into one count; maxCollapsing bounds the keys tracked meanwhile (more distinct
// entries than that are written one by one); backPressure is how long a request waits
// for room in a full queue before its entry is counted as dropped.
const (
	auditQueue     = 4096
	auditBatch     = 256
	collapseWindow = time.Minute
	maxCollapsing  = 10_000
	backPressure   = time.Second
	writeAttempts  = 3
)

// AuditStats count what became of audit entries since the start (exported as metrics).
type AuditStats struct {
	Written   uint64 // rows written
	Collapsed uint64 // entries folded into another row's count
	Dropped   uint64 // entries lost: the queue stayed full, or the database refused them
}

// auditor writes audit entries in batches off the request path: a pull must not wait
// for a database write, and a burst of pulls becomes one transaction. Repeated identical
// reads, logins and refusals within collapseWindow become two rows: the first, written
// at once, and one that counts the rest.
type auditor struct {
	meta   *meta.Store
	log    *slog.Logger
	in     chan meta.AuditEntry
	done   chan struct{}
	window time.Duration

	mu     sync.RWMutex // guards closed against record racing close
	closed bool

	written, collapsed, dropped atomic.Uint64
	lastDropLog                 atomic.Int64 // unix nanos: drops are logged at most every 10s
}

func newAuditor(m *meta.Store, log *slog.Logger) *auditor {
	a := &auditor{meta: m, log: log, in: make(chan meta.AuditEntry, auditQueue), done: make(chan struct{}), window: collapseWindow}
	go a.run()
	return a
}

func (a *auditor) stats() AuditStats {
	return AuditStats{Written: a.written.Load(), Collapsed: a.collapsed.Load(), Dropped: a.dropped.Load()}
}

func (a *auditor) record(e meta.AuditEntry) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e = bounded(e)
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		a.drop(1, "audit entry after shutdown dropped", e)
		return
	}
	select {
	case a.in <- e:
		return
	default:
	}
	// The writer is behind: the request waits a little (a flood slows itself down)
	// rather than the entry vanishing.
	t := time.NewTimer(backPressure)
	defer t.Stop()
	select {
	case a.in <- e:
	case <-t.C:
		a.drop(1, "audit queue full; entry dropped", e)
	}
}

func (a *auditor) drop(n int, msg string, e meta.AuditEntry) {
	total := a.dropped.Add(uint64(n))
	now := time.Now().UnixNano()
	last := a.lastDropLog.Load()
	if now-last >= int64(10*time.Second) && a.lastDropLog.CompareAndSwap(last, now) {
		a.log.Error(msg, "dropped_total", total, "actor", e.Actor, "action", e.Action, "resource", e.Resource)
	}
}

// collapsible entries are the ones a client repeats by itself or an attacker repeats
// on purpose: reads, logins and everything refused or failed. A successful change is
// always a row of its own.
func collapsible(e meta.AuditEntry) bool {
	return e.Result != "ok" || e.Action == "pull" || e.Action == "login"
}

type collapseKey struct {
	actor, actorType, remote, action, resource, result, detail string
}

type collapsing struct {
	first meta.AuditEntry
	until time.Time // end of the window
	n     int       // entries after the first
	last  time.Time
}

func (a *auditor) run() {
	defer close(a.done)
	var batch []meta.AuditEntry
	open := map[collapseKey]*collapsing{}
	flush := func() {
		if len(batch) == 0 {
			return
		}
		var err error
		for i := range writeAttempts {
			if err = a.meta.AppendAudit(context.Background(), batch); err == nil {
				break
			}
			time.Sleep(time.Duration(100<<i) * time.Millisecond)
		}
		if err != nil {
			a.log.Error("write audit entries", "count", len(batch), "err", err)
			a.drop(len(batch), "audit entries dropped: the database refused them", batch[0])
		} else {
			a.written.Add(uint64(len(batch)))
		}
		batch = batch[:0]
	}
	add := func(e meta.AuditEntry) {
		batch = append(batch, e)
		if len(batch) >= auditBatch {
			flush()
		}
	}
	summarize := func(k collapseKey, c *collapsing) {
		delete(open, k)
		if c.n == 0 {
			return
		}
		s := c.first
		s.At = c.last
		s.Detail = bound(fmt.Sprintf("repeated %d more times from %s to %s", c.n,
			c.first.At.UTC().Format(time.RFC3339), c.last.UTC().Format(time.RFC3339))+prefixed(c.first.Detail), maxAuditDetail)
		add(s)
	}
	closeWindows := func(now time.Time, all bool) {
		for k, c := range open {
			if all || !now.Before(c.until) {
				summarize(k, c)
			}
		}
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-a.in:
			if !ok {
				closeWindows(time.Time{}, true)
				flush()
				return
			}
			if !collapsible(e) {
				add(e)
				continue
			}
			k := collapseKey{e.Actor, e.ActorType, e.Remote, e.Action, e.Resource, e.Result, e.Detail}
			if c, ok := open[k]; ok {
				if e.At.Before(c.until) {
					c.n++
					if e.At.After(c.last) {
						c.last = e.At
					}
					a.collapsed.Add(1)
					continue
				}
				summarize(k, c)
			}
			if len(open) < maxCollapsing {
				open[k] = &collapsing{first: e, until: e.At.Add(a.window), last: e.At}
			}
			add(e)
		case now := <-tick.C:
			closeWindows(now, false)
			flush()
		}
	}
}

func prefixed(detail string) string {
	if detail == "" {
		return ""
	}
	return "; " + detail
}

// close writes what is queued and stops; later calls and later entries are no-ops.
func (a *auditor) close() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.in)
	}
	a.mu.Unlock()
	<-a.done
}

// bounded cuts every field of e to its bound.
func bounded(e meta.AuditEntry) meta.AuditEntry {
	e.Actor = bound(e.Actor, maxAuditActor)
	e.ActorType = bound(e.ActorType, maxAuditType)
	e.Action = bound(e.Action, maxAuditAction)
	e.Resource = bound(e.Resource, maxAuditResource)
	e.Result = bound(e.Result, maxAuditResult)
	e.Remote = bound(e.Remote, maxAuditRemote)
	e.Detail = bound(e.Detail, maxAuditDetail)
	return e
}

// bound cuts s to at most max bytes on a rune boundary and says how much was cut, so a
// shortened value is never mistaken for the whole one.
func bound(s string, max int) string {
	if len(s) <= max {
		return s
	}
	mark := fmt.Sprintf("…[%d bytes]", len(s))
	if len(mark) > max/2 {
		mark = "" // a short field (result, type) has no room to say so
	}
	cut := max - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// loginActor is how a failed or refused login's username enters the audit trail.
// People paste passwords and tokens into the username field; the trail is read by
// more people than should see them. A name that contains the password, or that looks
// like a secret (long, control characters, random-looking) and names no account, is
// replaced by a marker keyed with a per-process secret: the same input gives the same
// marker while the process runs, and the marker reveals nothing about it.
func (s *Service) loginActor(ctx context.Context, username, password string) string {
	if len(password) >= 4 && strings.Contains(username, password) {
		return s.actorMarker(username)
	}
	if !looksSecret(username) {
		return username
	}
	if s.accountExists(ctx, username) {
		return username
	}
	return s.actorMarker(username)
}

func (s *Service) actorMarker(username string) string {
	m := hmac.New(sha256.New, s.actorKey[:])
	m.Write([]byte(username))
	return fmt.Sprintf("<redacted %d bytes hmac:%s>", len(username), hex.EncodeToString(m.Sum(nil)[:8]))
}

func (s *Service) accountExists(ctx context.Context, name string) bool {
	if len(name) > maxAuditActor {
		return false
	}
	if kindOf(name) == "robot" {
		_, err := s.meta.RobotByName(ctx, name)
		return err == nil
	}
	_, err := s.meta.UserByName(ctx, name)
	return err == nil
}

// looksSecret tells names from tokens and passwords: account names are short words
// (dave, jane.doe@example.com, robot$team+ci); secrets are long or random-looking.
func looksSecret(name string) bool {
	if len(name) > 64 {
		return true
	}
	var lower, upper, digit, other bool
	for _, r := range name {
		switch {
		case unicode.IsControl(r) || r == utf8.RuneError:
			return true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		default:
			other = true
		}
	}
	if len(name) < 16 {
		return false
	}
	classes := 0
	for _, b := range []bool{lower, upper, digit, other} {
		if b {
			classes++
		}
	}
	// Mixed case with digits, or a long run of letters and digits of high entropy,
	// is how generated secrets look (API keys, tokens, base64).
	return (upper && lower && digit) || (classes >= 2 && len(name) >= 24 && entropy(name) >= 4.2)
}

// entropy is the Shannon entropy of s in bits per byte.
func entropy(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	var h float64
	n := float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
