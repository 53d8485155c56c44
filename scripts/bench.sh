#!/bin/sh
# Runs the edgeproxy/HAProxy comparison end to end: installs haproxy, nginx
# and wrk if missing, builds bin/edgeproxy, and runs the harness in bench/.
# Extra arguments go to the harness, e.g. a quick run:
#   scripts/bench.sh -duration 1s -body-duration 1s -rounds 2 -warmup 0
# Results: bench/results/<date>-<host>.{md,json,png}.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
start=$(date +%s)
scripts/install-bench-deps.sh
"$GO" build -ldflags "-X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" -o bin/edgeproxy ./cmd/edgeproxy
"$GO" build -o bin/bench ./bench
bin/bench -edgeproxy bin/edgeproxy -out bench/results "$@"
echo "bench.sh: done in $(($(date +%s) - start)) s"
