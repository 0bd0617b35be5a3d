package auth

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Failed-login throttling. Counting failures per account alone lets anyone lock anyone
// out (account names are guessable, robots' are predictable); counting them per address
// alone lets a botnet guess without end. So failures are counted three ways:
//
//   - per (account, source): the tight limit. An attacker locks the account out of
//     their own address only; its owner elsewhere never notices.
//   - per account, over every source: a much higher limit that caps the guesses a
//     distributed attacker gets. It does not lock out sources the account logged in
//     from successfully (trusted sources), so even then the owner keeps working from
//     where they usually are. Robots are exempt: their secrets have 256 bits, guessing
//     is hopeless, and a global lock would only be a way to stop someone's CI.
//   - per source, over every account: a high limit against spraying one password over
//     many accounts from one address. Trusted sources of an account are exempt for it.
//
// A source is a client IPv4 address or an IPv6 /64: one host usually holds a whole /64,
// so counting single IPv6 addresses would give an attacker 2^64 fresh sources.
//
// The state is process-local and bounded: at most capacity counters, the least recently
// used evicted first. Evicting an active lock needs capacity fresh failures within its
// window, each paying for a password check and throttled per source, so the table
// cannot be flushed cheaply the way a wholesale reset could.

const (
	// trustFor is how long a successful login makes its source trusted for the account.
	trustFor = 30 * 24 * time.Hour
	// maxKeyAccount bounds the account part of a key: a username can be as long as a
	// header, and the table must stay small.
	maxKeyAccount = 128
	// defaultFailureTable is the number of counters kept.
	defaultFailureTable = 100_000
)

// limits are the thresholds of a limiter; a threshold < 1 disables that counter.
type limits struct {
	perPair, perAccount, perSource int
	window                         time.Duration
	capacity                       int
}

type limiter struct {
	lim limits
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*list.Element // key → *counter
	order   *list.List               // front: most recently used
}

// counter counts failures in a fixed window that opens at the first failure; reaching
// the threshold locks for one window from that failure.
type counter struct {
	key          string
	start        time.Time
	count        int
	lockedUntil  time.Time
	trustedUntil time.Time // pair counters: the account logged in from this source
}

func newLimiter(lim limits, now func() time.Time) *limiter {
	if lim.capacity <= 0 {
		lim.capacity = defaultFailureTable
	}
	if now == nil {
		now = time.Now
	}
	return &limiter{lim: lim, now: now, entries: map[string]*list.Element{}, order: list.New()}
}

// sourceOf maps a client address to what is counted: IPv4 as is, IPv6 by its /64.
func sourceOf(remote string) string {
	a, err := netip.ParseAddr(remote)
	if err != nil {
		if len(remote) > 64 {
			return hashed(remote)
		}
		return remote
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

// accountKey folds case (directories match names case-insensitively, so "Alice" must
// not be a fresh counter for "alice") and bounds length.
func accountKey(name string) string {
	name = strings.ToLower(name)
	if len(name) > maxKeyAccount {
		return hashed(name)
	}
	return name
}

func hashed(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "#" + hex.EncodeToString(sum[:16])
}

func pairKey(account, source string) string { return "p\x00" + account + "\x00" + source }
func acctKey(account string) string         { return "a\x00" + account }
func srcKey(source string) string           { return "s\x00" + source }

// get returns the live counter for key, dropping it when nothing in it matters any more;
// create makes a missing one.
func (l *limiter) get(key string, now time.Time, create bool) *counter {
	if e, ok := l.entries[key]; ok {
		c := e.Value.(*counter)
		if c.count > 0 && now.Sub(c.start) >= l.lim.window {
			c.count = 0
		}
		if c.count == 0 && !now.Before(c.lockedUntil) && !now.Before(c.trustedUntil) && !create {
			l.order.Remove(e)
			delete(l.entries, key)
			return nil
		}
		l.order.MoveToFront(e)
		return c
	}
	if !create {
		return nil
	}
	for len(l.entries) >= l.lim.capacity {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.entries, oldest.Value.(*counter).key)
	}
	c := &counter{key: key}
	l.entries[key] = l.order.PushFront(c)
	return c
}

func (l *limiter) lockedAt(key string, now time.Time) bool {
	c := l.get(key, now, false)
	return c != nil && now.Before(c.lockedUntil)
}

// locked tells whether a login of account from remote must be refused unchecked.
func (l *limiter) locked(account string, robot bool, remote string) bool {
	acct, src := accountKey(account), sourceOf(remote)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	pair := l.get(pairKey(acct, src), now, false)
	if pair != nil && now.Before(pair.lockedUntil) {
		return true
	}
	if pair != nil && now.Before(pair.trustedUntil) {
		return false
	}
	if !robot && l.lockedAt(acctKey(acct), now) {
		return true
	}
	return l.lockedAt(srcKey(src), now)
}

// failed counts a failed login.
func (l *limiter) failed(account string, robot bool, remote string) {
	acct, src := accountKey(account), sourceOf(remote)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count(pairKey(acct, src), l.lim.perPair, now)
	if !robot {
		l.count(acctKey(acct), l.lim.perAccount, now)
	}
	l.count(srcKey(src), l.lim.perSource, now)
}

func (l *limiter) count(key string, threshold int, now time.Time) {
	if threshold < 1 {
		return
	}
	c := l.get(key, now, true)
	if c.count == 0 {
		c.start = now
	}
	c.count++
	if c.count >= threshold {
		c.lockedUntil = now.Add(l.lim.window)
	}
}

// succeeded clears the pair's failures and trusts the source for the account. The
// account's and the source's counters stay: a login to one's own account must not
// reset the count of guesses at others.
func (l *limiter) succeeded(account, remote string) {
	acct, src := accountKey(account), sourceOf(remote)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.get(pairKey(acct, src), now, true)
	c.count, c.lockedUntil, c.trustedUntil = 0, time.Time{}, now.Add(trustFor)
}

// size is the number of counters held (for tests).
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}
