#!/usr/bin/env bash
# The one command that runs gale's whole test suite on a fresh Debian machine:
# it installs what the tests use (curl, nginx, haproxy, wrk, h2load and nghttp, h2spec,
# promtool, python3-websockets, chromium, nats-server, pebble), then checks formatting, vets, runs the unit and integration tests under the race detector,
# runs the heavy tests (gigabyte transfers, 15,000 connections) without it, and
# finishes with the benchmark harness's smoke run (correctness only, no timing).
set -euo pipefail
cd "$(dirname "$0")/.."

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

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change: $bad"; exit 1; fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
sc="$(go env GOPATH)/bin/staticcheck"
if [ ! -x "$sc" ]; then go install honnef.co/go/tools/cmd/staticcheck@v0.8.2; fi
"$sc" ./...

echo "== h2spec (HTTP/2 conformance peer, run by TestH2Spec in http2/ and internal/daemon/app/)"
h2s="$(go env GOPATH)/bin/h2spec"
if [ ! -x "$h2s" ]; then go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible; fi  # the module has no /v2 path: the proxy serves it as +incompatible
export GALE_H2SPEC="$h2s"

echo "== go test -race"
go test -race -count=1 -timeout 15m ./...

echo "== portable fallback engine (the non-Linux engine, built on Linux with -tags galenet)"
go test -race -count=1 -timeout 10m -tags galenet ./engine ./server ./static ./internal/daemon/app ./proxy
GOOS=darwin go vet ./engine ./server ./static ./http1 ./config

echo "== io_uring engine (GALE_ENGINE=io_uring: every engine test and the protocols above it)"
GALE_ENGINE=io_uring go test -race -count=1 -timeout 15m ./internal/os/uring ./engine ./server/... ./static ./proxy ./l4 ./http2 ./websocket ./wsserver ./tlsterm

echo "== heavy tests (no race detector): 1 GiB transfers, 15,000 connections"
GALE_HEAVY=1 go test -count=1 -timeout 20m -run 'Heavy' ./...

if [ -x bench/run ]; then
	echo "== bench smoke"
	bench/run --smoke
fi
echo "== all tests passed"
