# Berth build and test entry points. `make test` is what CI runs (.ci/run) and what the
# README tells newcomers to type; it expects the tools from .ci/install-tools.sh.
SHELL := /bin/bash
GO ?= go
export PATH := $(or $(BERTH_TOOLS),/opt/berth-tools)/bin:$(PATH)

# Packages whose concurrency is exercised under the race detector.
RACE_PKGS := ./internal/blobstore/... ./internal/meta/... ./internal/registry/... ./internal/distribution/... ./internal/adminapi/... ./internal/jobs/... ./internal/gc/... ./internal/spool/... ./internal/hf/... ./internal/session/... ./internal/oidc/...

.PHONY: build test lint unit race fuzz-seeds e2e e2e-fips tools run bench image release

build:
	$(GO) build -o bin/berth ./cmd/berth

run:
	$(GO) run ./cmd/berth serve

tools:
	.ci/install-tools.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /e2e)

race:
	$(GO) test -race -count=1 $(RACE_PKGS)

# The fuzz targets' seed corpora run as ordinary tests in `unit`; this runs each target
# briefly with the fuzzer for a smoke check. The budget is a count of runs, not a
# duration: a -fuzztime duration ending while a worker is mid-input fails the target with
# "context deadline exceeded" on a loaded machine (golang/go#75804, fixed in Go 1.27; seen
# here on go1.26.8). 30000 runs: under a second for most targets, ~5 s for the slowest.
fuzz-seeds:
	@set -e; for pkg in $$($(GO) list ./internal/...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 30000x $$pkg; \
	  done; done

e2e:
	$(GO) test -count=1 -timeout 40m -v ./e2e/... 2>&1 | grep -v '^\s*OCI Conformance Test/' ; exit $${PIPESTATUS[0]}

# The conformance, auth, token-attack, ACME, LDAP, OIDC, trust and UI suites again,
# against berth built with the FIPS 140-3 module (GOFIPS140=v1.0.0) and run under
# GODEBUG=fips140=only, where any non-approved algorithm panics or fails (about two
# minutes). See the README's FIPS section.
E2E_FIPS_TESTS := ^(TestConformance|TestAuthMatrix|TestAuthRateLimit|TestAuthClients|TestSecurityAuth.*|TestTLSACMEPebble|TestLDAP|TestOIDC.*|TestTrust|TestWebUI|TestFIPS.*)$$
e2e-fips:
	E2E_GOFIPS140=v1.0.0 E2E_BERTH_ENV=GODEBUG=fips140=only $(GO) test -count=1 -timeout 20m -v -run '$(E2E_FIPS_TESTS)' ./e2e/ 2>&1 | grep -v '^\s*OCI Conformance Test/' ; exit $${PIPESTATUS[0]}

test: lint unit race fuzz-seeds e2e e2e-fips

# Berth's own image, built by cmd/berth-dist without a Docker engine: an OCI layout in
# dist/image holding the multi-arch index tagged $(VERSION) and its FIPS variant
# $(VERSION)-fips, each with an SBOM referrer. `make image PUSH=registry.example.com/berth/berth`
# also pushes both (credentials from Docker's config.json). Reproducible from one commit.
VERSION ?= $(shell git describe --tags --always)
image:
	$(GO) run ./cmd/berth-dist image -version $(VERSION) -layout dist/image $(if $(PUSH),-push $(PUSH))

# Release archives for linux and darwin on amd64 and arm64, with SHA256SUMS, in dist/release.
release:
	$(GO) run ./cmd/berth-dist release -version $(VERSION) -out dist/release

# Side by side with CNCF Distribution v3.1.2 on loopback; see bench/README.md.
bench:
	$(GO) run ./bench
