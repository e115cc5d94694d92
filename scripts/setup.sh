#!/usr/bin/env bash
# Prepares a checkout for the two README commands (npm run demo, npm test): redis-server, SIPp,
# promtool (Prometheus) and systemd-analyze from Debian; npm ci; the build (which is also the type
# check); and `credit-edge` on the PATH through `npm link`. Idempotent and quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]} from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # No recommends: prometheus would bring node-exporter and SNMP tools the tests do not use.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing ${missing[*]}; install with:  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

# npm ci when node_modules is absent or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

# The build: dist/ is what the CLI runs; tsc also type-checks (a type error stops here).
npm run -s build

# `credit-edge` on the PATH, as a Node CLI in a checkout conventionally gets it: `npm link` makes
# npm's global bin folder point at this checkout's dist/src/cli.js. The last checkout set up wins.
here="$(pwd -P)"
prefix="$(npm prefix -g)"
linked="$prefix/lib/node_modules/credit-edge"
if [ "$(readlink -f "$linked" 2>/dev/null || true)" != "$here" ]; then
  modules="$prefix/lib/node_modules"
  [ -d "$modules" ] || modules="$prefix/lib"
  if [ -w "$prefix/bin" ] && [ -w "$modules" ]; then
    previous=""
    [ -e "$linked" ] && previous="$(readlink -f "$linked")"
    npm link --no-audit --no-fund --loglevel=error >/dev/null
    echo "setup: credit-edge on the PATH now runs $here${previous:+ (was $previous)}" >&2
  else
    if [ -e "$linked" ]; then
      echo "setup: credit-edge on the PATH runs $(readlink -f "$linked"), not this checkout; npm's global folder $prefix is not writable by you." >&2
    else
      echo "setup: credit-edge is not on your PATH: npm's global folder $prefix is not writable by you." >&2
    fi
    echo "       Run 'sudo npm link' here once (or set a user npm prefix), or use 'npx credit-edge ...' in this folder." >&2
  fi
fi
