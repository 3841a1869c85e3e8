GO ?= go
export PATH := $(PATH):/usr/local/go/bin
# Static and stripped: berthd re-executes itself for every container start, and a dynamic loader and a
# larger binary cost milliseconds each time.
export CGO_ENABLED := 0
LDFLAGS := -s -w

.PHONY: build test unit integration lint bench up clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/berthd ./cmd/berthd
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/berth ./cmd/berth

## test: everything CI runs: formatting, vet, unit tests and integration tests (as root, real containers).
test: lint
	$(GO) test -count=1 -timeout 20m ./...

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)

integration:
	$(GO) test -count=1 -timeout 15m -v ./integration

lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...

## bench: berthd side by side with dockerd (and the berth CLI), see bench/README.md.
bench: build
	bench/run.sh

## up: set up and start Berth on this machine (as root).
up:
	scripts/setup.sh

clean:
	rm -rf bin
