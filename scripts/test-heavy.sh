#!/usr/bin/env bash
# The heavy tests, CI's second step (.ci/run): 1 GiB transfers through the proxy and the TCP
# relay with slow sides, 15,000 connections, 10,000 pub/sub subscribers x 100,000 messages,
# idle-memory checks at thousands of connections. They run without the race detector (it
# would multiply their time and memory), after the same set-up as scripts/test.sh. Without
# GALE_HEAVY=1 every one of them skips with a message; here they all run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== heavy tests (no race detector)"
GALE_HEAVY=1 go test -count=1 -timeout 25m -run 'Heavy' ./...
echo "== heavy tests passed"
