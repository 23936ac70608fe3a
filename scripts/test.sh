#!/usr/bin/env bash
# Runs Sluice's whole test suite on a fresh Debian machine with Go 1.26: checks formatting
# and vet, then every test with the race detector (fuzz targets run their seed corpora).
# It installs what the tests need when it is missing, from Debian's packages: redis-server
# (rate limits, caching), postgresql (usage records) and chromium (the dashboard); the
# tests start their own servers on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

need_go="1.26"
if ! command -v go >/dev/null 2>&1; then
  echo "test.sh: Go $need_go or newer is required (https://go.dev/dl/); not found on PATH" >&2
  exit 1
fi

# install_deb PACKAGE: installs a Debian package when running as root with apt-get.
apt_updated=""
install_deb() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing $1 from Debian's packages" >&2
    if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
  else
    echo "test.sh: $1 is not installed (apt-get install $1); the tests that need it will skip or fail" >&2
  fi
}
command -v redis-server >/dev/null 2>&1 || install_deb redis-server
# PostgreSQL for the usage-record tests (they start their own server as user postgres).
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  install_deb postgresql
fi
# Headless Chromium for the dashboard test.
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || install_deb chromium
# The tests start redis-server themselves; a system service is not needed.

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "test.sh: not gofmt-formatted:" >&2
  echo "$unformatted" >&2
  exit 1
fi

go vet ./...
go test -race -count=1 -timeout 10m ./... "$@"
