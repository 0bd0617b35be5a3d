# shellcheck shell=sh
# Source this file (bash or sh) to put Berth's test tools on PATH:
#
#   . .ci/env.sh
#
# It only sets BERTH_TOOLS and PATH. It deliberately leaves HOME, DOCKER_CONFIG,
# REGCTL_CONFIG etc. alone: tests should point those at their own temp dirs.
# Safe to source more than once and under `set -u`.

BERTH_TOOLS="${BERTH_TOOLS:-/opt/berth-tools}"
export BERTH_TOOLS
case ":${PATH:-}:" in
  *":$BERTH_TOOLS/bin:"*) ;;
  *) PATH="$BERTH_TOOLS/bin${PATH:+:$PATH}"; export PATH ;;
esac
