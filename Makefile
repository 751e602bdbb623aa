# contact-sync: common tasks. Needs only Go; see README.md.

GO ?= go
FUZZTIME ?= 10s

.PHONY: all build test demo vet fuzz bench bench-quick clean reliability

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
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeChangesValidity$$' -fuzztime $(FUZZTIME) ./internal/contact/

# The whole path on this machine: embedded NATS, a stand-in contact API and
# the shipped CRM export.
demo:
	$(GO) run ./cmd/contact-sync demo

# Benchmarks: the worker as a separate process against an embedded
# nats-server and a stand-in contact API on 127.0.0.1. Each run prints a
# table and appends it to BENCHMARKS.md; docs/tuning.md explains the
# scenarios. On 2 cores the full run took 3m10s and bench-quick (every
# scenario at a tenth of its size) 20s, plus the build.
bench: build
	bin/contact-sync bench -command 'make bench'

bench-quick: build
	bin/contact-sync bench -quick -command 'make bench-quick'

# The fault suite with its figures: runs internal/faultsuite, which writes
# one JSON row per fault to bin/reliability.jsonl, then rewrites the table of
# docs/reliability.md from those rows. The table is rewritten even when a
# fault test fails, and the target then fails too. About 2 minutes on 2 cores.
RELIABILITY_OUT ?= bin/reliability.jsonl

reliability:
	@mkdir -p $(dir $(RELIABILITY_OUT))
	@rm -f $(RELIABILITY_OUT)
	status=0; \
	CONTACT_SYNC_RELIABILITY_OUT=$(abspath $(RELIABILITY_OUT)) $(GO) test -race -count=1 -timeout 10m ./internal/faultsuite/ || status=$$?; \
	CONTACT_SYNC_RELIABILITY_OUT=$(abspath $(RELIABILITY_OUT)) CONTACT_SYNC_RELIABILITY_DOC=$(abspath docs/reliability.md) \
		$(GO) test -count=1 -run '^TestWriteReliabilityDoc$$' ./internal/faultsuite/ && exit $$status

clean:
	rm -rf bin
