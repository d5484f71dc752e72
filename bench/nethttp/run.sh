#!/usr/bin/env bash
# bench/nethttp/run.sh [PAIRS] [SECONDS]: the same net/http handler served through gale's
# net/http adapter and by net/http's own server, measured in alternating pairs with the
# same wrk command (-t1 -c64). Prints requests/s min/median/max per side and the gale/std
# ratio per pair (median, min, max). Both sides get the same number of cores: gale
# `-workers N` event loops, net/http GOMAXPROCS=N (N = nproc by default, WORKERS=N to change).
set -euo pipefail
cd "$(dirname "$0")/../.."
PAIRS=${1:-5}
SECS=${2:-5}
N=${WORKERS:-$(nproc)}
BASE=${BENCH_PORT_BASE:-18110}
GP=$BASE; SP=$((BASE + 1))
TMP=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
go build -o "$TMP/nethttp" ./bench/nethttp
"$TMP/nethttp" -mode gale -workers "$N" -addr 127.0.0.1:$GP >"$TMP/gale.log" 2>&1 &
pids+=($!)
GOMAXPROCS=$N "$TMP/nethttp" -mode std -addr 127.0.0.1:$SP >"$TMP/std.log" 2>&1 &
pids+=($!)
for port in $GP $SP; do
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/?q=x" >/dev/null && break; sleep 0.05; done
	[ "$(curl -fs "http://127.0.0.1:$port/?q=x")" = '{"hello":"world","q":"x"}' ] || { echo "port $port answers wrongly" >&2; exit 1; }
done
rps() { wrk -t1 -c64 -d"$1"s "http://127.0.0.1:$2/?q=x" | awk '/Requests\/sec/ {print $2}'; }
rps 1 $GP >/dev/null; rps 1 $SP >/dev/null
g=(); s=(); r=()
for i in $(seq "$PAIRS"); do
	a=$(rps "$SECS" $GP); b=$(rps "$SECS" $SP)
	g+=("$a"); s+=("$b"); r+=("$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", a/b}')")
	echo "pair $i: gale-adapter $a req/s, net/http $b req/s, ratio ${r[-1]}"
done
stats() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {printf "min %s median %s max %s", v[1], v[int((NR+1)/2)], v[NR]}'; }
echo "gale adapter: $(stats "${g[@]}") req/s"
echo "net/http:     $(stats "${s[@]}") req/s"
echo "ratio gale/net/http: $(stats "${r[@]}")"
