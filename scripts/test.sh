#!/usr/bin/env bash
# The README's test command: on a fresh Debian machine it installs what the tests use
# (scripts/setup.sh: curl, nginx, haproxy, wrk, h2load and nghttp, h2spec, promtool,
# python3-websockets, chromium, nats-server, pebble), then checks formatting, vets, runs the
# unit and integration tests under the race detector, again on the portable and the io_uring
# engines, and finishes with the benchmark harness's smoke run (correctness only, no timing).
# The heavy tests (gigabyte transfers, 15,000 connections, 10,000 pub/sub subscribers x 100,000
# messages) are scripts/test-heavy.sh, CI's second step (.ci/run runs both); here they skip
# with a message saying how to run them.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change: $bad"; exit 1; fi

echo "== merge conflict markers"
if git rev-parse --git-dir >/dev/null 2>&1 && git grep -n -I -E '^(<<<<<<<|>>>>>>>) ' -- ':!*.go'; then
	echo "unresolved merge conflict markers (above)"; exit 1
fi

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

if [ -x bench/run ]; then
	echo "== bench smoke"
	bench/run --smoke
fi
echo "== all tests passed (the heavy tests are scripts/test-heavy.sh)"
