#!/usr/bin/env bash
# Idempotent installer for the tools that Berth's tests and CI use.
#
#   .ci/install-tools.sh                 # install everything
#   .ci/install-tools.sh crane oras      # install a subset
#   .ci/install-tools.sh --list          # show the tools and their pinned versions
#
# Go tools are built into ${BERTH_TOOLS:-/opt/berth-tools}/bin. GOMODCACHE and
# GOCACHE stay at their defaults, so caches persist across CI runs on a machine.
# Debian packages are installed system-wide with apt-get.
#
# A tool is skipped when it is already installed at the pinned version:
#   - Go tools: the binary exists and `go version -m` shows the pinned module version;
#   - apt tools: dpkg reports the package installed (the version is printed, and a
#     warning is given if it differs from the expected upstream version).
#
# Environment:
#   BERTH_TOOLS       install root (default /opt/berth-tools)
#   BERTH_TOOLS_JOBS  how many Go builds may run at once (default 2)
set -euo pipefail

BERTH_TOOLS="${BERTH_TOOLS:-/opt/berth-tools}"
BIN="$BERTH_TOOLS/bin"
LOGDIR="$BERTH_TOOLS/logs"
STAGING="$BERTH_TOOLS/.staging"
JOBS="${BERTH_TOOLS_JOBS:-2}"

# Go tools, longest build first so that two parallel slots pack well.
# name | version | module | package
GO_TOOLS=(
  "trivy|v0.74.0|github.com/aquasecurity/trivy|github.com/aquasecurity/trivy/cmd/trivy"
  "cosign|v3.1.3|github.com/sigstore/cosign/v3|github.com/sigstore/cosign/v3/cmd/cosign"
  "registry|v3.1.2|github.com/distribution/distribution/v3|github.com/distribution/distribution/v3/cmd/registry"
  "helm|v3.22.0|helm.sh/helm/v3|helm.sh/helm/v3/cmd/helm"
  "versitygw|v1.8.0|github.com/versity/versitygw|github.com/versity/versitygw/cmd/versitygw"
  "oci-conformance|v0.0.0-20260831232431-97274622c111|github.com/opencontainers/distribution-spec/conformance|github.com/opencontainers/distribution-spec/conformance"
  "crane|v0.22.1|github.com/google/go-containerregistry|github.com/google/go-containerregistry/cmd/crane"
  "regctl|v0.11.7|github.com/regclient/regclient|github.com/regclient/regclient/cmd/regctl"
  "oras|v1.3.6|oras.land/oras|oras.land/oras/cmd/oras"
  "notation|v1.3.2|github.com/notaryproject/notation|./cmd/notation"
  "pebble|v2.10.3|github.com/letsencrypt/pebble/v2|github.com/letsencrypt/pebble/v2/cmd/pebble"
  "pebble-challtestsrv|v2.10.3|github.com/letsencrypt/pebble/v2|github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv"
  "zot|v2.1.20|zotregistry.dev/zot/v2|./cmd/zot"
  "zb|v2.1.20|zotregistry.dev/zot/v2|./cmd/zb"
)

# Tools built from a git source tree, because the Go module proxy does not serve their
# module (zot, the benchmark's third registry, and its load tool zb; no build tags,
# zot's minimal build). The tree is BERTH_ZOT_SRC, a git directory or checkout holding
# the pinned commit (default: the local mirror when present, else a clone from GitHub);
# its own go.mod and go.sum pin every dependency; the flags are those of zot's Makefile
# for its minimal release binaries. zot: about 2 minutes on 2 cores (1.3 GB of RAM; the
# module cache adds its downloads when cold), zb a few seconds after it.
SRC_TOOLS=" zot zb "
ZOT_TAG=v2.1.20 ZOT_COMMIT=3b5796d834e8661ea661a5fcc47add8d4405aebf
ZOT_GIT=https://github.com/project-zot/zot

# Tools built inside their module directory in the module cache instead of with
# `go install MOD@VER`: the proxy here refuses notation's /@v/list, which
# go install reads (see ecosystem.md section 10). Their package is relative.
MODDIR_TOOLS=" notation "

# Tools that need a Go experiment to build: trivy v0.74 uses encoding/json/v2
# (its own release builds set GOEXPERIMENT=jsonv2). About 8 minutes on 2 cores.
declare -A GO_EXPERIMENT=([trivy]=jsonv2)

# Debian 12 packages. Debian revisions change with security updates, so only the
# upstream version is checked (a mismatch is a warning, not an error).
# name | apt package | package whose version is checked | expected upstream version prefix
APT_TOOLS=(
  "skopeo|skopeo|skopeo|1.9.3"
  "postgresql|postgresql|postgresql-15|15."
  "apache2-utils|apache2-utils|apache2-utils|2.4."
  "jq|jq|jq|1.6"
  "curl|curl|curl|7.88."
  "containerd|containerd|containerd|1.6."
  "nginx|nginx|nginx|1.22."
  "slapd|slapd|slapd|2.5."
  "ldap-utils|ldap-utils|ldap-utils|2.5."
  "podman|podman|podman|4.3."
  "chromium|chromium|chromium|156."
  "systemd|systemd|systemd|252."
)

# npm packages the e2e tests run with node (Hugging Face's JavaScript clients), each
# installed into $BERTH_TOOLS/node/<name without @, / as ->-<version>/node_modules, the
# place the tests look (e2e/hf_test.go nodePackage). Install scripts are not run: they
# fetch binaries from outside the npm registry, and the CPU build is in the package.
# name | npm package | version
NPM_TOOLS=(
  "huggingface-hub|@huggingface/hub|2.17.5"
  "huggingface-transformers|@huggingface/transformers|4.3.2"
)

say() { printf '%s\n' "$*"; }
die() { printf 'install-tools: %s\n' "$*" >&2; exit 1; }
since() { awk -v s="$1" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", e - s }'; }

usage() {
  say "usage: $0 [--list] [TOOL...]"
  say "tools:"
  local e name version
  for e in "${APT_TOOLS[@]}"; do IFS='|' read -r name _ _ version <<<"$e"; say "  $name (apt, Debian 12, upstream ${version}*)"; done
  for e in "${GO_TOOLS[@]}"; do IFS='|' read -r name version _ _ <<<"$e"; say "  $name $version (go)"; done
  for e in "${NPM_TOOLS[@]}"; do IFS='|' read -r name _ version <<<"$e"; say "  $name $version (npm)"; done
}

# ---------------------------------------------------------------- selection
declare -A WANT=()
for arg in "$@"; do
  case "$arg" in
    -h|--help|--list) usage; exit 0 ;;
    postgres) arg=postgresql ;;
    htpasswd) arg=apache2-utils ;;
    conformance) arg=oci-conformance ;;
    distribution) arg=registry ;;
  esac
  known=no
  for e in "${APT_TOOLS[@]}" "${GO_TOOLS[@]}" "${NPM_TOOLS[@]}"; do [[ "${e%%|*}" == "$arg" ]] && known=yes; done
  [[ $known == yes ]] || { usage >&2; die "unknown tool: $arg"; }
  WANT[$arg]=1
done
wanted() { (( ${#WANT[@]} == 0 )) || [[ -n "${WANT[$1]:-}" ]]; }

T0=$EPOCHREALTIME
FAILED=()

# One installer at a time per BERTH_TOOLS (e.g. two CI jobs on one machine).
mkdir -p "$BERTH_TOOLS" || die "cannot create $BERTH_TOOLS (run as root or set BERTH_TOOLS)"
exec 9>>"$BERTH_TOOLS/.lock"
flock 9

# ---------------------------------------------------------------- apt
SUDO=()
if [[ $EUID -ne 0 ]]; then SUDO=(sudo -n); fi

apt_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
apt_upstream() { local v; v=$(dpkg-query -W -f='${Version}' "$1"); v=${v#*:}; printf '%s' "${v%-*}"; }
apt_report() { # name verpkg expect state
  local v; v=$(apt_upstream "$2")
  if [[ "$v" == "$3"* ]]; then say "$1 $v (apt): $4"
  else say "$1 $v (apt): $4 -- WARNING: expected upstream version ${3}*"; fi
}

APT_TODO=()
for e in "${APT_TOOLS[@]}"; do
  IFS='|' read -r name pkg verpkg expect <<<"$e"
  wanted "$name" || continue
  if apt_installed "$pkg" && apt_installed "$verpkg"; then
    apt_report "$name" "$verpkg" "$expect" "already installed"
  else
    APT_TODO+=("$e")
  fi
done

if (( ${#APT_TODO[@]} )); then
  command -v apt-get >/dev/null || die "apt-get not found"
  APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
  mkdir -p "$LOGDIR"
  t=$EPOCHREALTIME
  say "apt-get update: running…"
  "${APT[@]}" update >"$LOGDIR/apt-update.log" 2>&1 || { tail -n 20 "$LOGDIR/apt-update.log" >&2; die "apt-get update failed"; }
  say "apt-get update: done ($(since "$t"))"
  for e in "${APT_TODO[@]}"; do
    IFS='|' read -r name pkg verpkg expect <<<"$e"
    say "$name (apt): installing…"
    t=$EPOCHREALTIME
    if "${APT[@]}" install -y --no-install-recommends "$pkg" >"$LOGDIR/$name.log" 2>&1; then
      apt_report "$name" "$verpkg" "$expect" "installed in $(since "$t")"
    else
      say "$name (apt): FAILED after $(since "$t") (log: $LOGDIR/$name.log)"
      tail -n 20 "$LOGDIR/$name.log" | sed 's/^/    /'
      FAILED+=("$name")
    fi
  done
fi

# ---------------------------------------------------------------- go
CONF_MODULE=github.com/opencontainers/distribution-spec/conformance

# go_ok BIN MODULE VERSION: the binary exists and was built from MODULE@VERSION.
go_ok() {
  [[ -x "$1" ]] || return 1
  # A module-directory build records its main module as "(devel)"; the
  # version it was built from is kept in a stamp written after the build.
  local stamp="$BERTH_TOOLS/.moddir/${1##*/}"
  if [[ -f $stamp ]]; then [[ "$(<"$stamp")" == "$2 $3" ]]; return; fi
  go version -m "$1" 2>/dev/null |
    awk -v m="$2" -v v="$3" '($1 == "mod" || $1 == "dep") && $2 == m && $3 == v { ok = 1 } END { exit !ok }'
}

# Where the conformance README lives in the module cache; the path is also
# written to $BERTH_TOOLS/oci-conformance-README.txt.
conformance_readme() { # version
  local dir
  dir="$(go env GOMODCACHE)/$CONF_MODULE@$1"
  if [[ ! -f "$dir/README.md" ]]; then
    (cd / && go mod download "$CONF_MODULE@$1") >/dev/null 2>&1 || true
  fi
  printf '%s\n' "$dir/README.md" >"$BERTH_TOOLS/oci-conformance-README.txt"
  printf '%s' "$dir/README.md"
}

# go_build_moddir NAME VERSION MODULE PKG STAGE: download MODULE@VERSION and
# build PKG (relative to the module root) there, so the module's own go.mod and
# go.sum pin every dependency, as `go install MOD@VER` would.
go_build_moddir() {
  local dir
  dir=$(cd / && go mod download -json "$3@$2" | awk -F'"' '$2 == "Dir" { print $4 }')
  [[ -n "$dir" && -d "$dir" ]] || { echo "go mod download $3@$2 gave no directory"; return 1; }
  (cd "$dir" && go build -trimpath -o "$5/$1" "$4")
  mkdir -p "$BERTH_TOOLS/.moddir"
  rm -f "$BERTH_TOOLS/.moddir/$1"
}

# go_build_src NAME PKG STAGE: build PKG of zot's pinned commit (see SRC_TOOLS).
go_build_src() {
  local src="${BERTH_ZOT_SRC:-}" tree="$3/src"
  if [[ -z $src && -d /work/.mirror/project-zot+zot/repo ]]; then src=/work/.mirror/project-zot+zot/repo; fi
  if [[ -z $src ]]; then
    src="$3/git"
    git clone --quiet --bare --filter=blob:none "$ZOT_GIT" "$src"
  fi
  mkdir -p "$tree"
  git -C "$src" archive "$ZOT_COMMIT" | tar -x -C "$tree"
  # As zot's Makefile builds its minimal release binaries (CGO off, encoding/json/v2).
  local info=zotregistry.dev/zot/v2/pkg/buildinfo
  (cd "$tree" && CGO_ENABLED=0 GOEXPERIMENT=jsonv2 go build -trimpath \
    -ldflags "-X $info.ReleaseTag=$ZOT_TAG -X $info.Commit=$ZOT_COMMIT -X $info.BinaryType=minimal -X $info.GoVersion=$(go env GOVERSION)" \
    -o "$3/$1" "$2")
  mkdir -p "$BERTH_TOOLS/.moddir"
  rm -f "$BERTH_TOOLS/.moddir/$1"
}

# Runs in the background with output to the tool's log file. Builds into a
# staging dir and then renames into $BIN, so $BIN never holds a partial binary.
go_install() { # name version module package
  set -euo pipefail
  local name=$1 version=$2 pkg=$4 stage="$STAGING/$1"
  rm -rf "$stage"; mkdir -p "$stage"
  if [[ $MODDIR_TOOLS == *" $name "* ]]; then
    go_build_moddir "$name" "$version" "$3" "$pkg" "$stage"
  elif [[ $SRC_TOOLS == *" $name "* ]]; then
    go_build_src "$name" "$pkg" "$stage"
  elif [[ $name == oci-conformance ]]; then
    # The suite is a main package (README: "go build"); "go test -c" still works
    # but prints a deprecation warning. Build it from a scratch module.
    cd "$stage"
    go mod init berth-tools/oci-conformance
    go get "$pkg@$version"
    go build -ldflags "-X main.Version=$version" -o "$stage/$name" "$pkg"
  else
    cd "$stage"
    GOEXPERIMENT="${GO_EXPERIMENT[$name]:-${GOEXPERIMENT:-}}" GOBIN="$stage" go install "$pkg@$version"
  fi
  mv -f "$stage/$name" "$BIN/$name"
  if [[ "$MODDIR_TOOLS$SRC_TOOLS" == *" $name "* ]]; then printf '%s %s\n' "$3" "$version" >"$BERTH_TOOLS/.moddir/$name"; fi
  rm -rf "$stage"
}

GO_TODO=()
have_go=yes
for e in "${GO_TOOLS[@]}"; do
  IFS='|' read -r name version module pkg <<<"$e"
  wanted "$name" || continue
  if [[ $have_go == yes ]] && ! command -v go >/dev/null; then have_go=no; fi
  [[ $have_go == yes ]] || { say "$name $version: FAILED (go is not on PATH)"; FAILED+=("$name"); continue; }
  if go_ok "$BIN/$name" "$module" "$version"; then
    extra=""
    [[ $name == oci-conformance ]] && extra=" (README: $(conformance_readme "$version"))"
    say "$name $version: already installed$extra"
  else
    GO_TODO+=("$e")
  fi
done

if (( ${#GO_TODO[@]} )); then
  mkdir -p "$BIN" "$LOGDIR" "$STAGING"
  declare -A RUNNING=() STARTED=()
  trap 'kill "${!RUNNING[@]}" 2>/dev/null || true' INT TERM

  reap_one() {
    local pid="" rc=0 name version module
    wait -n -p pid "${!RUNNING[@]}" || rc=$?
    [[ -n "$pid" ]] || return 0
    IFS='|' read -r name version module _ <<<"${RUNNING[$pid]}"
    unset "RUNNING[$pid]"
    if (( rc == 0 )) && go_ok "$BIN/$name" "$module" "$version"; then
      local extra=""
      [[ $name == oci-conformance ]] && extra=" (README: $(conformance_readme "$version"))"
      say "$name $version: installed in $(since "${STARTED[$name]}")$extra"
    else
      say "$name $version: FAILED after $(since "${STARTED[$name]}") (rc=$rc, log: $LOGDIR/$name.log)"
      tail -n 20 "$LOGDIR/$name.log" | sed 's/^/    /'
      FAILED+=("$name")
    fi
  }

  for e in "${GO_TODO[@]}"; do
    while (( ${#RUNNING[@]} >= JOBS )); do reap_one; done
    IFS='|' read -r name version module pkg <<<"$e"
    say "$name $version: installing… (log: $LOGDIR/$name.log)"
    STARTED[$name]=$EPOCHREALTIME
    go_install "$name" "$version" "$module" "$pkg" >"$LOGDIR/$name.log" 2>&1 9>&- &
    RUNNING[$!]=$e
  done
  while (( ${#RUNNING[@]} )); do reap_one; done
  trap - INT TERM
  rmdir "$STAGING" 2>/dev/null || true
fi

# ---------------------------------------------------------------- npm
for e in "${NPM_TOOLS[@]}"; do
  IFS='|' read -r name pkg version <<<"$e"
  wanted "$name" || continue
  dir="$BERTH_TOOLS/node/$name-$version"
  if grep -qs "\"version\": \"$version\"" "$dir/node_modules/$pkg/package.json"; then
    say "$name $version (npm): already installed"
    continue
  fi
  if ! command -v npm >/dev/null; then say "$name $version (npm): FAILED (npm is not on PATH)"; FAILED+=("$name"); continue; fi
  mkdir -p "$BERTH_TOOLS/node" "$LOGDIR"
  t=$EPOCHREALTIME
  stage=$(mktemp -d "$BERTH_TOOLS/node/stage-XXXXXX")
  if npm install --prefix "$stage" --no-audit --no-fund --no-save --ignore-scripts "$pkg@$version" >"$LOGDIR/$name.log" 2>&1; then
    rm -rf "$dir" && mv "$stage" "$dir"
    say "$name $version (npm): installed in $(since "$t")"
  else
    rm -rf "$stage"
    say "$name $version (npm): FAILED (log: $LOGDIR/$name.log)"
    FAILED+=("$name")
  fi
done

# ---------------------------------------------------------------- summary
if (( ${#FAILED[@]} )); then
  say "install-tools: FAILED: ${FAILED[*]} ($(since "$T0"))"
  exit 1
fi
say "install-tools: all requested tools ready ($(since "$T0"))"
say "export PATH=\"$BIN:\$PATH\"    # or: source .ci/env.sh"
