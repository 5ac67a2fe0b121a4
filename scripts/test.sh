#!/usr/bin/env bash
# The README's test command. On a fresh Debian machine it installs what the tests need (pinned),
# then runs formatting, lints and every test. Under CI=true a missing component fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${STEWARD_TEST_CACHE:-$HOME/.cache/steward-test}"
mkdir -p "$CACHE"

log() { printf '== %s\n' "$*" >&2; }

# The tested Claude Code range, from the one place that names it (steward doctor reads it too).
VERSIONS_RS=src/adapters/doctor/claude_version.rs
claude_const() { sed -n "s/^pub const $1: &str = \"\([0-9][0-9.]*\)\";\$/\1/p" "$VERSIONS_RS"; }
CLAUDE_OLDEST="$(claude_const OLDEST_TESTED)"
CLAUDE_NEWEST="$(claude_const NEWEST_TESTED)"
if [ -z "$CLAUDE_OLDEST" ] || [ -z "$CLAUDE_NEWEST" ]; then
  log "cannot read OLDEST_TESTED / NEWEST_TESTED from $VERSIONS_RS"
  exit 1
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; return 1; fi
}

# Debian packages the tests drive for real.
# git: the workspaces of tests/it/ci.rs and the hostile-workspace tests;
# systemd: systemd-analyze verify for triggers/; nix-bin: nix-instantiate --parse for nix/;
# prometheus-alertmanager: amtool check-config for the receiver snippet, and the real Alertmanager
# that delivers alerts to `steward serve` in tests/it/serve.rs.
# podman, runc, busybox-static, docker-compose: the real container engine (podman serving the
# Docker API, an image made from the static busybox) and compose v1 that tests/it/change_apply.rs
# applies compose changes with (tests/it/common/podman.rs).
# python3-aiosmtpd: the loopback SMTP server email notifications are delivered to in
# tests/it/notify.rs (run with Debian's /usr/bin/python3).
APT_PACKAGES=(procps iproute2 curl util-linux git systemd nix-bin prometheus-alertmanager
  podman runc busybox-static docker-compose python3-aiosmtpd
  # tests/it/alert_metrics.rs: promtool check/test rules on triggers/steward-alerts.yml
  prometheus
  # tests/it/packaging.rs: the man page renders with `man -l`
  man-db groff-base
  # tests/it/web.rs: the web page driven by headless Chromium over WebDriver
  chromium chromium-driver
  # tests/it/report.rs: a listener in the test's network namespace (Debian's python3)
  python3)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
# Node.js may come from elsewhere than Debian (its npm conflicts with Debian's): only the
# commands matter.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The real Claude Code CLI at both ends of the tested range, each pinned, from npm, into a cache
# (no global install). Prints the binary's path.
install_claude() {
  local version="$1" dir="$CACHE/claude-$1" bin="$CACHE/claude-$1/node_modules/.bin/claude"
  if ! "$bin" --version 2>/dev/null | grep -q "^$version "; then
    log "installing @anthropic-ai/claude-code@$version into $dir"
    rm -rf "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
      "@anthropic-ai/claude-code@$version" >&2
  fi
  if ! "$bin" --version | grep -q "^$version "; then
    log "claude $version did not install at $bin"
    return 1
  fi
  log "claude: $("$bin" --version)"
  printf '%s\n' "$bin"
}
CLAUDE_OLDEST_BIN="$(install_claude "$CLAUDE_OLDEST")"
CLAUDE_NEWEST_BIN="$(install_claude "$CLAUDE_NEWEST")"

# The test modules that drive the real CLI (they call `claude_bin()`), run a second time against
# the oldest version; everything runs against the newest, which is what users install. The tests
# are one binary (tests/it/): a module is selected by its `name::` prefix.
REAL_CLI_TESTS=()
for f in $(grep -l 'claude_bin()' tests/it/*.rs); do
  REAL_CLI_TESTS+=("$(basename "$f" .rs)::")
done
THREADS="${STEWARD_TEST_THREADS:-4}"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
log "cargo test, real CLI $CLAUDE_NEWEST"
STEWARD_TEST_CLAUDE="$CLAUDE_NEWEST_BIN" cargo test --locked --all-targets -- --test-threads="$THREADS"
log "cargo test --test it -- ${REAL_CLI_TESTS[*]}, real CLI $CLAUDE_OLDEST"
STEWARD_TEST_CLAUDE="$CLAUDE_OLDEST_BIN" cargo test --locked --test it -- "${REAL_CLI_TESTS[@]}" --test-threads="$THREADS"
