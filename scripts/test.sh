#!/usr/bin/env bash
# Runs Sluice's whole test suite on a fresh Debian machine with Go 1.26: checks formatting
# and vet, then every test with the race detector (fuzz targets run their seed corpora).
# It installs what the tests need when it is missing; today that is nothing beyond Go,
# and services such as redis-server join this list as features need them.
set -euo pipefail
cd "$(dirname "$0")/.."

need_go="1.26"
if ! command -v go >/dev/null 2>&1; then
  echo "test.sh: Go $need_go or newer is required (https://go.dev/dl/); not found on PATH" >&2
  exit 1
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "test.sh: not gofmt-formatted:" >&2
  echo "$unformatted" >&2
  exit 1
fi

go vet ./...
go test -race -count=1 -timeout 10m ./... "$@"
