# edgeproxy build and test entry points. `make test` is what CI runs.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BIN     := bin/edgeproxy

.PHONY: build test demo bench lint clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/edgeproxy

# Unit, integration and end-to-end tests (the e2e tests build the binary
# themselves). Bounded: well under 15 minutes on 2 cores.
test: lint
	$(GO) test -race -count=1 -timeout 14m ./...

demo: build
	./$(BIN) demo

# Go micro-benchmarks of the hot path, with allocation reports.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./proxy/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
