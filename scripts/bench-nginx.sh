#!/usr/bin/env bash
# Compares Sluice with nginx on this machine, in one run, with `sluice bench`.
#
#   scripts/bench-nginx.sh                         # closed loop, 64 workers, 10s per target
#   RATE=2000 UPSTREAM_LATENCY=20ms scripts/bench-nginx.sh
#   DURATION=5s WARMUP=1s CONCURRENCY=32 scripts/bench-nginx.sh
#
# It builds sluice once, starts the mock upstream (`sluice bench --serve-mock`), starts nginx
# in front of it (a generated config in a temporary folder: upstream keepalive, HTTP/1.1,
# no buffering, no access log), and measures, each against the same mock reached directly
# in the same run:
#   nginx        passthrough and stream, through nginx (--target, --direct the mock)
#   sluice       the same two as a separate `sluice serve` process, like nginx (SEPARATE=0: skip)
#   in-process   `sluice bench --scenario passthrough|full|stream`: gateway, mock and load
#                generator in one process (allocations per request and RSS measured there)
# then prints a summary with each throughput against nginx's.
#
# Environment: DURATION (10s), WARMUP (2s), RATE (open loop, requests/s) or CONCURRENCY
# (closed loop workers, default 64), UPSTREAM_LATENCY (0ms: the throughput comparison
# measures the proxies, not the wait), CHUNKS (20), PROMPT_BYTES (1024), SEPARATE (1),
# RESULTS_DIR (keep every run's JSON there), NGINX (the nginx binary).
# nginx is installed from Debian's packages when missing and running as root.
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
RATE=${RATE:-}
CONCURRENCY=${CONCURRENCY:-64}
UPSTREAM_LATENCY=${UPSTREAM_LATENCY:-0ms}
CHUNKS=${CHUNKS:-20}
PROMPT_BYTES=${PROMPT_BYTES:-1024}
SEPARATE=${SEPARATE:-1}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*" >&2; }

# --- nginx ---------------------------------------------------------------------------
if ! [ -x "$NGINX" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		say "installing nginx from Debian's packages"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq nginx-light >/dev/null || apt-get install -y -qq nginx >/dev/null
		NGINX=$(command -v nginx || echo /usr/sbin/nginx)
	else
		echo "bench-nginx: nginx not found (install it, or set NGINX=/path/to/nginx)" >&2
		exit 1
	fi
fi

# --- sluice --------------------------------------------------------------------------
say "building sluice"
go build -o "$tmp/sluice" ./cmd/sluice
if ! "$tmp/sluice" bench --help >/dev/null 2>&1; then
	echo "bench-nginx: this build of sluice has no bench command (register newBenchCmd in cmd/sluice/main.go)" >&2
	exit 1
fi

free_port() { # a port nothing listens on, from $1 up
	local p=$1
	while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
	echo "$p"
}
wait_port() { # wait up to 10s for 127.0.0.1:$1 to accept
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench-nginx: nothing listens on 127.0.0.1:$1; logs in $tmp:" >&2
	tail -n 20 "$tmp"/*.log >&2 || true
	exit 1
}

mock_port=$(free_port 18300)
say "mock upstream on 127.0.0.1:$mock_port (upstream latency $UPSTREAM_LATENCY, $CHUNKS chunks)"
"$tmp/sluice" bench --serve-mock "127.0.0.1:$mock_port" --upstream-latency "$UPSTREAM_LATENCY" --chunks "$CHUNKS" >"$tmp/mock.log" 2>&1 &
pids+=($!)
wait_port "$mock_port"
mock_url="http://127.0.0.1:$mock_port/v1"

nginx_port=$(free_port 18400)
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    keepalive_requests 1000000;
    upstream mock {
        server 127.0.0.1:$mock_port;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 60s;
        }
    }
}
EOF
say "nginx $("$NGINX" -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$nginx_port"
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx.log" 2>&1 &
nginx_pid=$!
pids+=("$nginx_pid")
wait_port "$nginx_port"

# --- runs ----------------------------------------------------------------------------
load=(--concurrency "$CONCURRENCY")
[ -n "$RATE" ] && load=(--rate "$RATE")
common=(--duration "$DURATION" --warmup "$WARMUP" --upstream-latency "$UPSTREAM_LATENCY" --chunks "$CHUNKS" --prompt-bytes "$PROMPT_BYTES" "${load[@]}" --json)

runs=()
bench() { # NAME ARGS...: one `sluice bench`, its JSON kept in $tmp/NAME.json
	local name=$1
	shift
	say "$name: sluice bench $* ${common[*]}"
	"$tmp/sluice" bench "$@" "${common[@]}" >"$tmp/$name.json"
	runs+=("$name")
}
rss_of() { # peak RSS in MiB of a process and its children (VmHWM)
	local p kb=0
	for p in "$1" $(pgrep -P "$1" || true); do
		kb=$((kb + $(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
	done
	awk -v kb="$kb" 'BEGIN {printf "%.1f", kb / 1024}'
}

bench nginx-passthrough --scenario passthrough --target "http://127.0.0.1:$nginx_port/v1" --direct "$mock_url"
bench nginx-stream --scenario stream --target "http://127.0.0.1:$nginx_port/v1" --direct "$mock_url"
nginx_rss=$(rss_of "$nginx_pid")

sluice_rss=()
if [ "$SEPARATE" = 1 ]; then
	for sc in passthrough stream full; do
		port=$(free_port 18500)
		"$tmp/sluice" bench --print-config --scenario "$sc" --direct "$mock_url" >"$tmp/$sc.yaml"
		"$tmp/sluice" serve -f "$tmp/$sc.yaml" --listen "127.0.0.1:$port" --log-level warn >/dev/null 2>"$tmp/serve-$sc.log" &
		serve_pid=$!
		pids+=("$serve_pid")
		wait_port "$port"
		bench "serve-$sc" --scenario "$sc" --target "http://127.0.0.1:$port/v1" --direct "$mock_url"
		sluice_rss+=("serve-$sc=$(rss_of "$serve_pid")")
		kill "$serve_pid"
		wait "$serve_pid" 2>/dev/null || true
	done
fi

for sc in passthrough full stream; do
	bench "inproc-$sc" --scenario "$sc"
done

# --- summary -------------------------------------------------------------------------
# The JSON is encoding/json's, one line, keys in a fixed order: gateway, direct, added, ...
obj() { # FILE gateway|direct: that object's text (nested objects included)
	case $2 in
	gateway) sed 's/.*"gateway":{//; s/"direct":{.*//' "$1" ;;
	direct) sed 's/.*"direct":{//; s/"added":{.*//' "$1" ;;
	esac
}
num() { # TEXT KEY: the first number after "KEY":
	{ grep -o "\"$2\":[-0-9.e+]*" <<<"$1" || true; } | head -n 1 | cut -d: -f2
}
sub() { # TEXT NAME: the inside of the first nested object "NAME":{...}
	{ grep -o "\"$2\":{[^}]*}" <<<"$1" || true; } | head -n 1
}
ms() { awk -v v="${1:-}" 'BEGIN { if (v == "") print "-"; else if (v < 1000 && v > -1000) printf "%.0fµs", v; else printf "%.2fms", v / 1000 }'; }
tput_of() { num "$(obj "$tmp/$1.json" gateway)" throughput_rps; }

if [ -n "${RESULTS_DIR:-}" ]; then
	mkdir -p "$RESULTS_DIR"
	cp "$tmp"/*.json "$RESULTS_DIR"/
fi

nginx_pt=$(tput_of nginx-passthrough)
nginx_st=$(tput_of nginx-stream)
printf '\n== summary: %s per target, %s, upstream latency %s, request %s bytes, %s CPUs\n' \
	"$DURATION" "$(if [ -n "$RATE" ]; then echo "open loop $RATE req/s"; else echo "closed loop $CONCURRENCY workers"; fi)" \
	"$UPSTREAM_LATENCY" "$PROMPT_BYTES" "$(nproc)"
printf '%-20s %9s %7s %9s %9s %9s %9s %9s %9s %9s %8s\n' run "req/s" "vs nginx" p50 p99 "added p50" "added p99" "ttft +p50" "ttft +p99" "allocs/req" "RSS MiB"
for r in "${runs[@]}"; do
	f="$tmp/$r.json"
	g=$(obj "$f" gateway)
	lat=$(sub "$g" latency)
	added=$(grep -o '"added":{[^}]*}' "$f" || true)
	addedt=$(grep -o '"added_ttft":{[^}]*}' "$f" || true)
	t=$(num "$g" throughput_rps)
	case $r in
	*stream*) base=$nginx_st ;;
	*) base=$nginx_pt ;;
	esac
	ratio=$(awk -v a="$t" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
	allocs=$(num "$(cat "$f")" gateway_allocs_per_request)
	rss=$(awk -v b="$(num "$(cat "$f")" peak_rss_bytes)" 'BEGIN {printf "%.1f", b / 1048576}')
	case $r in
	nginx-*) rss="$nginx_rss*" ;;
	serve-*)
		for kv in "${sluice_rss[@]}"; do [ "${kv%%=*}" = "$r" ] && rss="${kv#*=}*"; done
		;;
	esac
	errs=$(num "$g" errors)
	printf '%-20s %9.0f %7s %9s %9s %9s %9s %9s %9s %9s %8s%s\n' "$r" "$t" "$ratio" \
		"$(ms "$(num "$lat" p50_us)")" "$(ms "$(num "$lat" p99_us)")" \
		"$(ms "$(num "$added" p50_us)")" "$(ms "$(num "$added" p99_us)")" \
		"$(ms "$(num "$addedt" p50_us)")" "$(ms "$(num "$addedt" p99_us)")" \
		"$(if [ -n "$allocs" ]; then printf '%.0f' "$allocs"; else echo -; fi)" "$rss" \
		"$([ "${errs:-0}" != 0 ] && echo "  ($errs errors)")"
done
cat <<'EOF'

added = through the proxy minus the same mock reached directly, same run, per percentile.
RSS: in-process runs are the whole bench process (gateway, mock and load generator);
* marks the proxy process alone (nginx master and workers; the separate sluice serve).
nginx and "serve-" runs put the proxy in its own process like a deployment; the in-process
runs share one Go runtime with the mock and the load generator (allocations measured there).
EOF
