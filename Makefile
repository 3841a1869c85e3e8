GO ?= go
export PATH := $(PATH):/usr/local/go/bin
# Static and stripped: berthd re-executes itself for every container start, and a dynamic loader and a
# larger binary cost milliseconds each time. cgo is on only for the small C constructor that exec needs
# to join a container's namespaces before the Go runtime starts (internal/runtime/linux/nsenter); the
# netgo and osusergo tags keep libc's resolver and user lookup out, so the link stays fully static.
export CGO_ENABLED := 1
TAGS := netgo,osusergo
LDFLAGS := -s -w -extldflags -static

.PHONY: build test unit integration lint fuzz bench up clean

build:
	$(GO) build -tags $(TAGS) -ldflags "$(LDFLAGS)" -o bin/berthd ./cmd/berthd
	$(GO) build -tags $(TAGS) -ldflags "$(LDFLAGS)" -o bin/berth-init ./cmd/berth-init
	$(GO) build -tags $(TAGS) -ldflags "$(LDFLAGS)" -o bin/berth ./cmd/berth

## test: everything CI runs: formatting, vet, unit tests and integration tests (as root, real containers).
test: lint
	$(GO) test -count=1 -timeout 20m ./...

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)

integration:
	$(GO) test -count=1 -timeout 15m -v ./integration

## fuzz: every fuzz target for FUZZTIME each (CI runs it after make test). A failing input is written to
## the package's testdata/fuzz/<Target>/; once fixed, keep it there as a seed.
FUZZTIME ?= 10s
FUZZ_TARGETS := internal/archive:FuzzApply internal/build:FuzzParse internal/build:FuzzResolveIn \
	internal/reference:FuzzParseNormalizedNamed internal/api:FuzzContainerCreate internal/container:FuzzCreateRequest \
	internal/cluster/ca:FuzzParseToken
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh $(FUZZ_TARGETS)

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
