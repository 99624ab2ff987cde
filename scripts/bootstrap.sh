#!/usr/bin/env bash
# Installs what a fresh machine lacks: nats-server (Debian package) and the npm workspace,
# then builds it, so `npx bus …` works right after (libs/cli/bin/bus.js runs the built CLI).
# Used by the README's two commands and by .ci/run, so all three install the same way.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ] && [ -z "${NATS_URL:-}" ]; then
  echo "bootstrap: installing nats-server (Debian package)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nats-server >/dev/null
fi
export PATH="$PATH:/usr/sbin"

node -e 'const [maj, min] = process.versions.node.split(".").map(Number); if (maj < 20 || (maj === 20 && min < 19)) { console.error(`bootstrap: Node ${process.versions.node} is too old; the bus needs Node 20.19 or newer`); process.exit(1); }'

npm ci --no-audit --no-fund --loglevel=error

# the `bus` command and the services run from dist/; turbo skips what is built already
npx turbo run build --output-logs=errors-only
