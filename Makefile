# edgeproxy build and test entry points. `make test` is what CI runs.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BIN     := bin/edgeproxy

.PHONY: build test test-deps demo bench microbench lint clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/edgeproxy

# Unit, integration and end-to-end tests (the e2e tests build the binary
# themselves). Bounded: well under 15 minutes on 2 cores. test-deps installs
# HAProxy and Chromium from Debian's apt when they are missing.
test: lint test-deps
	$(GO) test -race -count=1 -timeout 14m ./...

test-deps:
	sh scripts/install-test-deps.sh

demo: build
	./$(BIN) demo

# Side-by-side benchmark against HAProxy (installs haproxy, nginx and wrk
# from Debian's apt; about 15 minutes; writes bench/results/).
bench:
	scripts/bench.sh

# Go micro-benchmarks of the hot path, with allocation reports.
microbench:
	$(GO) test -run '^$$' -bench . -benchmem ./proxy/ ./healthcheck/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
