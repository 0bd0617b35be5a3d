package events

import (
	"encoding/json"
	"path"
	"slices"
	"strings"
	"time"
)

// CloudEventType is the CloudEvents type attribute of an event type.
func CloudEventType(t string) string { return "io.berth." + t }

// cloudEvent is a CloudEvents 1.0 event in the JSON format (structured mode).
type cloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            any       `json:"data"`
}

// harborEvent is Harbor's webhook payload (its "Default" format), so receivers written
// for Harbor work unchanged.
type harborEvent struct {
	Type      string     `json:"type"`
	OccurAt   int64      `json:"occur_at"`
	Operator  string     `json:"operator"`
	EventData harborData `json:"event_data"`
}

type harborData struct {
	Resources  []harborResource `json:"resources"`
	Repository harborRepo       `json:"repository"`
	Custom     map[string]any   `json:"custom_attributes,omitempty"`
}

type harborResource struct {
	Digest      string `json:"digest"`
	Tag         string `json:"tag"`
	ResourceURL string `json:"resource_url"`
}

type harborRepo struct {
	DateCreated  int64  `json:"date_created,omitempty"`
	Name         string `json:"name"`
	Namespace    string `json:"namespace"`
	RepoFullName string `json:"repo_full_name"`
	RepoType     string `json:"repo_type"`
}

// harborTypes maps event types to Harbor's names.
var harborTypes = map[string]string{
	ArtifactPushed: "PUSH_ARTIFACT", ArtifactPulled: "PULL_ARTIFACT", ArtifactDeleted: "DELETE_ARTIFACT", TagDeleted: "DELETE_ARTIFACT",
	ScanCompleted: "SCANNING_COMPLETED", ReplicationCompleted: "REPLICATION", ReplicationFailed: "REPLICATION",
	QuotaExceeded: "QUOTA_EXCEED", Ping: "PING",
}

// encode renders e as a subscription of format receives it. source is the CloudEvents
// source; host prefixes Harbor's resource URLs ("" : none); repoType is "public",
// "private" or "" when unknown.
func encode(format string, e Event, source, host, repoType string) ([]byte, error) {
	if format == FormatHarbor {
		return json.Marshal(harbor(e, host, repoType))
	}
	subject := e.Repository
	if subject != "" && e.Digest != "" {
		subject += "@" + e.Digest
	}
	return json.Marshal(cloudEvent{SpecVersion: "1.0", ID: e.ID, Source: source, Type: CloudEventType(e.Type),
		Subject: subject, Time: e.Time.UTC(), DataContentType: "application/json", Data: e})
}

func harbor(e Event, host, repoType string) harborEvent {
	ns, name, _ := strings.Cut(e.Repository, "/")
	h := harborEvent{Type: harborTypes[e.Type], OccurAt: e.Time.Unix(), Operator: e.Actor,
		EventData: harborData{Resources: []harborResource{}, Repository: harborRepo{Name: name, Namespace: ns, RepoFullName: e.Repository, RepoType: repoType}}}
	if h.Type == "" {
		h.Type = strings.ToUpper(strings.ReplaceAll(e.Type, ".", "_"))
	}
	prefix := e.Repository
	if host != "" {
		prefix = host + "/" + e.Repository
	}
	tags := e.Tags
	if len(tags) == 0 && e.Digest != "" {
		tags = []string{""}
	}
	for _, t := range tags {
		r := harborResource{Digest: e.Digest, Tag: t, ResourceURL: prefix + "@" + e.Digest}
		if t != "" {
			r.ResourceURL = prefix + ":" + t
		}
		if e.Digest != "" || t != "" {
			h.EventData.Resources = append(h.EventData.Resources, r)
		}
	}
	custom := map[string]any{"berth_type": e.Type, "event_id": e.ID, "sequence": e.Sequence}
	for k, v := range e.Data {
		custom[k] = v
	}
	h.EventData.Custom = custom
	return h
}

// matches tells whether the subscription wants an event of type typ in repo. Pings go
// only to the subscription they were sent to.
func (s Subscription) matches(typ, project, repo string) bool {
	if typ == Ping {
		return false
	}
	if s.Project != "" && s.Project != project {
		return false
	}
	if len(s.Events) > 0 && !slices.Contains(s.Events, typ) {
		return false
	}
	if len(s.Repositories) == 0 {
		return true
	}
	for _, g := range s.Repositories {
		if GlobMatch(g, repo) {
			return true
		}
	}
	return false
}

// GlobMatch matches a repository name against a glob: path.Match per segment, with "**"
// matching any number of segments (replication rules use the same globs).
func GlobMatch(glob, name string) bool {
	return matchSegs(strings.Split(glob, "/"), strings.Split(name, "/"))
}

func matchSegs(g, n []string) bool {
	for len(g) > 0 {
		if g[0] == "**" {
			for i := 0; i <= len(n); i++ {
				if matchSegs(g[1:], n[i:]) {
					return true
				}
			}
			return false
		}
		if len(n) == 0 {
			return false
		}
		if ok, err := path.Match(g[0], n[0]); err != nil || !ok {
			return false
		}
		g, n = g[1:], n[1:]
	}
	return len(n) == 0
}

// ValidGlob reports whether every segment of glob is a valid path.Match pattern.
func ValidGlob(glob string) bool {
	if glob == "" {
		return false
	}
	for _, seg := range strings.Split(glob, "/") {
		if _, err := path.Match(seg, ""); err != nil {
			return false
		}
	}
	return true
}
