// Package cric is the client logic behind the cric command: a multi-registry OCI client
// built on go-containerregistry. It owns talking to registries (client.go), credentials in
// Docker's config.json and credential helpers (auth.go), the manifest graph and the
// transfer engine that moves blobs and manifests between registries, OCI image layouts
// and archives (graph.go, transfer.go, sources.go, sinks.go, archive.go), the
// user-facing operations built on it (copy.go for pull/push/cp, bundle.go for
// save/load, query.go for tags/catalog/inspect/digest/rm/tag), progress reporting
// (progress.go), output formatting (output.go) and turning failures into clear,
// classified errors (errors.go).
//
// Nothing here speaks the distribution protocol by hand: requests go through
// go-containerregistry's remote package, which also brings the token/basic auth flow,
// retries and the referrers tag-schema fallback.
package cric
