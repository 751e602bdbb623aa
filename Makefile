# contact-sync: common tasks. Needs only Go; see README.md.

GO ?= go
FUZZTIME ?= 10s

.PHONY: all build test demo vet fuzz bench bench-quick clean

all: build

build:
	$(GO) build -trimpath -o bin/contact-sync ./cmd/contact-sync

vet:
	$(GO) vet ./...

# The test suite: vet, every test with the race detector, then each fuzz
# target for a short, bounded time.
test: vet
	$(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) --no-print-directory fuzz

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEvent$$' -fuzztime $(FUZZTIME) ./internal/contact/
	$(GO) test -run '^$$' -fuzz '^FuzzMerge$$' -fuzztime $(FUZZTIME) ./internal/contact/

# The whole path on this machine: embedded NATS, a stand-in contact API and
# the shipped CRM export.
demo:
	$(GO) run ./cmd/contact-sync demo

clean:
	rm -rf bin
