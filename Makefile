VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO      ?= go

.PHONY: build test lint demo bench clean

## build: the teleport binary, static, with its version
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o teleport .

## test: every test against throwaway PostgreSQL clusters (needs initdb and pg_ctl, see README)
test:
	$(GO) test -race -count=1 -timeout 20m ./...

## lint: formatting and vet
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -f teleport

## demo: two throwaway clusters, both instances, a workload, rows arriving (needs PostgreSQL server binaries)
demo:
	./demo.sh

## bench: replication figures beside references measured in the same run (about 12 minutes; needs pgbench, and PgQ for the capture reference, which it installs with apt-get when missing)
bench:
	@pgbin=$$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1); \
	major=$$(basename $$(dirname "$$pgbin")); \
	if [ -n "$$major" ] && [ ! -f /usr/share/postgresql/$$major/extension/pgq.control ] && command -v apt-get >/dev/null; then \
		echo "bench: installing postgresql-$$major-pgq3, the capture reference"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-$$major-pgq3 >/dev/null; \
	fi
	bash -o pipefail -c "TELEPORT_BENCH=1 $(GO) test -count=1 -run '^TestBench\$$' -timeout 60m -v . | grep -v '^\s*main_test.go'"
