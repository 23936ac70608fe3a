#!/usr/bin/env bash
# Runs Sluice's whole test suite on a fresh Debian machine with Go 1.26: checks formatting
# and vet, then every test with the race detector (fuzz targets run their seed corpora).
# It installs what the tests need when it is missing: redis-server (Debian's package) for
# the rate-limit tests, which start their own server on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."

need_go="1.26"
if ! command -v go >/dev/null 2>&1; then
  echo "test.sh: Go $need_go or newer is required (https://go.dev/dl/); not found on PATH" >&2
  exit 1
fi

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing redis-server from Debian's packages" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "test.sh: redis-server is not installed (apt-get install redis-server); the Redis tests will fail" >&2
  fi
fi
# The tests start redis-server themselves; a system service is not needed.

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "test.sh: not gofmt-formatted:" >&2
  echo "$unformatted" >&2
  exit 1
fi

go vet ./...
go test -race -count=1 -timeout 10m ./... "$@"
