// Package events is Berth's event log and its durable webhooks.
//
// Every change to a repository's manifests and tags (push, tag delete, manifest delete)
// writes an event row into the outbox in the change's own transaction: meta's change
// hook (Service.Hook) runs inside the write, so an acknowledged push always has its
// event and a rolled-back one never does. Other packages emit their own events the same
// way with Publish (own transaction) or PublishTx (inside theirs): a scan finishing
// calls
//
//	svc.PublishTx(ctx, tx, events.Event{Type: events.ScanCompleted, Repository: repo,
//		Digest: digest, Data: map[string]any{"critical": 1, "high": 4}})
//
// (or Publish(ctx, ev) when it writes nothing else). Events of one repository are
// numbered (Sequence) in their commit order.
//
// Delivery is work for package jobs: a dispatcher task fans each new event out to the
// subscriptions whose filters match (system-wide ones and the project's), recording one
// delivery per subscription; a task per (subscription, repository) sends that lane's
// deliveries one at a time in order, signed per Standard Webhooks (webhook-id,
// webhook-timestamp, webhook-signature "v1,<base64 HMAC-SHA256(secret,
// id.timestamp.body)>"), as CloudEvents 1.0 JSON or in Harbor's webhook shape. A failed
// delivery is retried with exponential backoff until the retry window passes, holding
// back the later events of its lane meanwhile (order first); then it is marked failed
// and the lane goes on. Every attempt is kept with its status code; a delivery can be
// replayed. Tasks hold leases in the database, so delivery survives restarts and
// crashes and any replica may send: at least once, with the same webhook-id on every
// attempt so receivers can drop duplicates.
package events

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"time"
)

// Event types (the names subscriptions filter on).
const (
	ArtifactPushed = "artifact.pushed"
	// ArtifactPulled is a served manifest GET, sampled (events.pulls.sample).
	ArtifactPulled  = "artifact.pulled"
	ArtifactDeleted = "artifact.deleted"
	TagDeleted      = "tag.deleted"
	// VerificationFailed: a signature policy refused a pull (or, in warn mode, would
	// have); once per manifest, policy outcome and 10 minutes.
	VerificationFailed = "verification.failed"
	// ScanCompleted is emitted by package scan when a report is ready.
	ScanCompleted = "scan.completed"
	// Replication outcomes (package replication).
	ReplicationCompleted = "replication.completed"
	ReplicationFailed    = "replication.failed"
	// QuotaExceeded: a push was refused by the project's quota.
	QuotaExceeded = "quota.exceeded"
	// Ping is sent to one subscription on request, to test a receiver.
	Ping = "ping"
)

// Types lists the event types subscriptions may name.
var Types = []string{ArtifactPushed, ArtifactPulled, ArtifactDeleted, VerificationFailed, TagDeleted, ScanCompleted, ReplicationCompleted, ReplicationFailed, QuotaExceeded, Ping}

// Event is one thing that happened. ID, Time and Sequence are set when it is written.
type Event struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Time       time.Time `json:"time"`
	Project    string    `json:"project,omitempty"`
	Repository string    `json:"repository,omitempty"`
	// Sequence numbers the events of one repository from 1 in commit order.
	Sequence     int64    `json:"sequence"`
	Digest       string   `json:"digest,omitempty"`
	MediaType    string   `json:"mediaType,omitempty"`
	ArtifactType string   `json:"artifactType,omitempty"`
	Subject      string   `json:"subject,omitempty"`
	Size         int64    `json:"size,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	Actor        string   `json:"actor,omitempty"`
	// Data carries what is particular to the type (a scan summary, a replication's
	// counts); it must marshal as JSON.
	Data map[string]any `json:"data,omitempty"`
}

// Publisher emits events. *Service implements it; other packages take this interface.
type Publisher interface {
	// Publish writes e in its own transaction.
	Publish(ctx context.Context, e Event) error
	// PublishTx writes e inside tx: it is delivered only if tx commits.
	PublishTx(ctx context.Context, tx *sql.Tx, e Event) error
}

// ErrNotFound reports a subscription or delivery that does not exist.
var ErrNotFound = errors.New("events: not found")

// InvalidError reports a subscription that cannot be stored as given.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "evt_" + hex.EncodeToString(b[:])
}

// project is the first path segment of a repository name.
func project(repo string) string {
	for i := 0; i < len(repo); i++ {
		if repo[i] == '/' {
			return repo[:i]
		}
	}
	return repo
}
