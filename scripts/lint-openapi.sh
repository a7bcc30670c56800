#!/usr/bin/env bash
# Lint docs/openapi.yaml with the @redocly/cli version pinned in
# tools/openapi/package-lock.json. Needs node >= 18 and npm >= 7 (Debian 12's
# nodejs and npm packages do); installs into tools/openapi/node_modules on
# first use or when the lock file changed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# No telemetry, no update check: the build machines only reach the npm registry.
export REDOCLY_TELEMETRY=off
export REDOCLY_SUPPRESS_UPDATE_NOTICE=true

tools=tools/openapi
redocly="$tools/node_modules/.bin/redocly"

if [ ! -x "$redocly" ] || [ "$tools/package-lock.json" -nt "$tools/node_modules" ]; then
    (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
    # npm ci leaves the directory's mtime at install time; make sure it is
    # newer than the lock file so that the next run skips the install.
    touch "$tools/node_modules"
fi

exec "$redocly" lint --config "$tools/redocly.yaml" docs/openapi.yaml "$@"
