#!/usr/bin/env bash
# Installs, when missing, what gale's tests and benchmarks drive on a fresh Debian machine
# (curl, nginx, haproxy, wrk, h2load and nghttp, promtool, python3-websockets, chromium,
# nats-server, pebble). Run by scripts/test.sh and scripts/test-heavy.sh; safe to run alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
for pair in curl:curl nginx:nginx-light haproxy:haproxy wrk:wrk h2load:nghttp2-client promtool:prometheus chromium:chromium nats-server:nats-server pebble:pebble; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
# WebSocket interop peers: Debian's python3-websockets and a headless Chromium.
/usr/bin/python3 -c 'import websockets' >/dev/null 2>&1 || need+=(python3-websockets)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
	echo "== installing ${need[*]}"
	if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

