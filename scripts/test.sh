#!/usr/bin/env bash
# The README's test command. On a fresh Debian machine it installs what the tests need (pinned),
# then runs formatting, lints and every test. Under CI=true a missing component fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

CLAUDE_VERSION="${STEWARD_CLAUDE_VERSION:-2.1.197}"
CACHE="${STEWARD_TEST_CACHE:-$HOME/.cache/steward-test}"
mkdir -p "$CACHE"

log() { printf '== %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; return 1; fi
}

# Debian packages the tests drive for real.
# systemd: systemd-analyze verify for triggers/; nix-bin: nix-instantiate --parse for nix/;
# prometheus-alertmanager: amtool check-config for the receiver snippet, and the real Alertmanager
# that delivers alerts to `steward serve` in tests/serve.rs.
APT_PACKAGES=(procps iproute2 curl util-linux systemd nix-bin prometheus-alertmanager)
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

# The real Claude Code CLI, pinned, from npm, into a cache (no global install).
CLAUDE_DIR="$CACHE/claude-$CLAUDE_VERSION"
CLAUDE_BIN="$CLAUDE_DIR/node_modules/.bin/claude"
if ! "$CLAUDE_BIN" --version 2>/dev/null | grep -q "^$CLAUDE_VERSION"; then
  log "installing @anthropic-ai/claude-code@$CLAUDE_VERSION into $CLAUDE_DIR"
  rm -rf "$CLAUDE_DIR"
  npm install --prefix "$CLAUDE_DIR" --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$CLAUDE_VERSION" >&2
fi
if ! "$CLAUDE_BIN" --version | grep -q "^$CLAUDE_VERSION"; then
  log "claude $CLAUDE_VERSION did not install at $CLAUDE_BIN"
  exit 1
fi
export STEWARD_TEST_CLAUDE="$CLAUDE_BIN"
log "claude: $("$CLAUDE_BIN" --version)"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
log "cargo test"
cargo test --locked --all-targets -- --test-threads="${STEWARD_TEST_THREADS:-4}"
