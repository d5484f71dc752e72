#!/usr/bin/env bash
# bench/nethttp/run.sh [PAIRS] [SECONDS]: the same net/http handler served through gale's
# net/http adapter and by net/http's own server, measured in alternating pairs with the
# same wrk command (-t1 -c64). Prints requests/s min/median/max per side and the gale/std
# ratio per pair (median, min, max), and the server's CPU per request (utime+stime of
# the server process over the run, in microseconds per request). Both sides get the same number of cores: gale
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
GPID=${pids[0]}; SPID=${pids[1]}
TCK=$(getconf CLK_TCK)
# ticks PID: the process's utime+stime in clock ticks (fields 14 and 15 of /proc/PID/stat).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# run SECS PORT PID: prints "req/s cpu-us-per-request".
run() {
	local t0 t1 out
	t0=$(ticks "$3")
	out=$(wrk -t1 -c64 -d"$1"s "http://127.0.0.1:$2/?q=x")
	t1=$(ticks "$3")
	awk -v t0="$t0" -v t1="$t1" -v tck="$TCK" -v secs="$1" '
		/Requests\/sec/ { rps = $2 }
		END { printf "%s %.2f", rps, (t1 - t0) / tck * 1e6 / (rps * secs) }' <<<"$out"
}
run 1 $GP "$GPID" >/dev/null; run 1 $SP "$SPID" >/dev/null
g=(); s=(); r=(); gc=(); sc=()
for i in $(seq "$PAIRS"); do
	read -r a ac <<<"$(run "$SECS" $GP "$GPID")"; read -r b bc <<<"$(run "$SECS" $SP "$SPID")"
	g+=("$a"); s+=("$b"); gc+=("$ac"); sc+=("$bc"); r+=("$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", a/b}')")
	echo "pair $i: gale-adapter $a req/s ($ac us CPU/req), net/http $b req/s ($bc us CPU/req), ratio ${r[-1]}"
done
stats() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {printf "min %s median %s max %s", v[1], v[int((NR+1)/2)], v[NR]}'; }
echo "gale adapter: $(stats "${g[@]}") req/s"
echo "net/http:     $(stats "${s[@]}") req/s"
echo "ratio gale/net/http: $(stats "${r[@]}")"
echo "CPU us/req gale adapter: $(stats "${gc[@]}"), net/http: $(stats "${sc[@]}")"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
