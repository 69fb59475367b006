VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO      ?= go

.PHONY: build test test-one lint demo bench scale snapshot clean

## build: the teleport binary, static, with its version
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o teleport .

# The PostgreSQL majors every package's tests run on, and the one whose run
# has the race detector on. The end-to-end and crash tests (a source and a
# target cluster each) run on PAIRS instead, source:target, chosen so that
# every major is once a source and once a target, and upgrades and
# downgrades both occur; the pair on RACE_MAJOR has the race detector on.
MAJORS     ?= 13 14 15 16 17 18
RACE_MAJOR ?= 15
PAIRS      ?= 13:18 14:17 15:15 16:13 17:16 18:14
PAIR_TESTS := ^Test(E2E|Crash)_

## test: every package on every PostgreSQL major from 13 to 18, then the end-to-end and crash tests on pairs of majors; installs the majors it lacks (.ci/pg-majors)
test:
	./.ci/pg-majors $(sort $(MAJORS) $(subst :, ,$(PAIRS)))
	@root=$$(./.ci/pg-majors --root); set -e; \
	for m in $(MAJORS); do \
		race=; [ "$$m" = "$(RACE_MAJOR)" ] && race=-race; \
		echo "=== PostgreSQL $$m: go test $$race ./... (the end-to-end and crash tests run on the pairs below)"; \
		start=$$(date +%s); \
		PG_BINDIR=$$root/$$m/bin $(GO) test $$race -count=1 -timeout 20m -skip '^TestCrossMajor|$(PAIR_TESTS)' ./...; \
		echo "=== PostgreSQL $$m: passed in $$(( $$(date +%s) - start )) s"; \
	done; \
	echo "=== across majors: the schema differ"; \
	$(GO) test -count=1 -timeout 10m -run '^TestCrossMajor' ./...; \
	for p in $(PAIRS); do \
		race=; [ "$${p%:*}" = "$(RACE_MAJOR)" ] && [ "$${p#*:}" = "$(RACE_MAJOR)" ] && race=-race; \
		echo "=== source $${p%:*}, target $${p#*:}: end-to-end and crash tests $$race"; \
		start=$$(date +%s); \
		PG_BINDIR=$$root/$${p%:*}/bin TELEPORT_TEST_MAJORS=$$p $(GO) test $$race -count=1 -timeout 20m -run '$(PAIR_TESTS)' .; \
		echo "=== source $${p%:*}, target $${p#*:}: passed in $$(( $$(date +%s) - start )) s"; \
	done

## test-one: the whole suite on one PostgreSQL server only (PG_BINDIR, else the newest installed), with the race detector
test-one:
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

## scale: a source of 2,000 tables and 200 partitions (SCALE_TABLES, SCALE_PARTITIONS) replicated, then idle: time to the target, idle CPU, memory
scale:
	./scale.sh

## snapshot: pgbench on a replicated source, then the same with a snapshot held open (SNAPSHOT_SECONDS, 120): the size of Teleport's tables
snapshot:
	./snapshot.sh

## bench: replication figures beside references measured in the same run (several minutes, see the README's Performance; needs pgbench, and PgQ for the capture reference, which it installs with apt-get when missing)
bench:
	@pgbin=$$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1); \
	major=$$(basename $$(dirname "$$pgbin")); \
	if [ -n "$$major" ] && [ ! -f /usr/share/postgresql/$$major/extension/pgq.control ] && command -v apt-get >/dev/null; then \
		echo "bench: installing postgresql-$$major-pgq3, the capture reference"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-$$major-pgq3 >/dev/null; \
	fi
	bash -o pipefail -c "TELEPORT_BENCH=1 $(GO) test -count=1 -run '^TestBench\$$' -timeout 60m -v . | grep -v '^\s*main_test.go'"
