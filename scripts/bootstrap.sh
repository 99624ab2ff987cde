#!/usr/bin/env bash
# Installs what a fresh machine lacks: nats-server, PostgreSQL's server and Chromium (Debian packages) and the npm workspace,
# then builds it, so `npx bus …` works right after (libs/cli/bin/bus.js runs the built CLI).
# Used by the README's two commands and by .ci/run, so all three install the same way.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: nats-server (unless NATS_URL names one), and PostgreSQL's server binaries for
# the tests' private PostgreSQL (unless TEST_PG_URL names one; the testkit runs initdb itself,
# so no cluster is created or started here)
missing=()
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ] && [ -z "${NATS_URL:-}" ]; then
  missing+=(nats-server)
fi
if [ -z "${TEST_PG_URL:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ ! -x "${PG_BIN_DIR:-/nonexistent}/initdb" ]; then
  missing+=(postgresql)
fi
# Chromium for the console's browser tests (test/src/console.test.ts drives /usr/bin/chromium with playwright-core)
if [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM_BIN:-}" ]; then
  missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]} (Debian packages)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if [[ " ${missing[*]} " == *" postgresql "* ]] && [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    # tests start their own server: no main cluster on 5432
    $SUDO mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' | $SUDO tee /etc/postgresql-common/createcluster.d/bus-no-main-cluster.conf >/dev/null
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

node -e 'const [maj, min] = process.versions.node.split(".").map(Number); if (maj < 20 || (maj === 20 && min < 19)) { console.error(`bootstrap: Node ${process.versions.node} is too old; the bus needs Node 20.19 or newer`); process.exit(1); }'

npm ci --no-audit --no-fund --loglevel=error

# the `bus` command and the services run from dist/; turbo skips what is built already
npx turbo run build --output-logs=errors-only
