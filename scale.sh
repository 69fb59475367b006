#!/usr/bin/env bash
# Teleport at catalog scale: a source with SCALE_TABLES tables (each with a
# primary key and one index) and a table of SCALE_PARTITIONS partitions, all
# there before the instances start, replicated to a target; then the source
# left idle. Prints how long until every table is on the target, what the
# idle source costs in CPU (its instance and its PostgreSQL backends), and
# each instance's memory. Run: make scale (SCALE_TABLES=10000
# SCALE_PARTITIONS=1000 make scale for the production-sized run).
set -euo pipefail
cd "$(dirname "$0")"

TABLES=${SCALE_TABLES:-2000}
PARTS=${SCALE_PARTITIONS:-200}
IDLE=${SCALE_IDLE_SECONDS:-60}
bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$bindir/initdb" ] || { echo "scale: no PostgreSQL server binaries: set PG_BINDIR" >&2; exit 1; }
clk=$(getconf CLK_TCK)

bin=teleport-scale app_password=scale
go build -o "$bin" .
. .ci/clusters.sh
src_pg=$(free_port); start_cluster source "$src_pg"
dst_pg=$(free_port); start_cluster target "$dst_pg"

echo "== creating $TABLES tables and a table of $PARTS partitions on the source"
# 500 tables a transaction: the default lock table holds about 6,400 locks,
# and each table with its index and TOAST table takes several.
for ((from = 1; from <= TABLES; from += 500)); do
	psql_app "$src_pg" -q -c "DO \$\$ BEGIN
		FOR i IN $from..$((from + 499 < TABLES ? from + 499 : TABLES)) LOOP
			EXECUTE format('CREATE TABLE public.t%s (id bigint PRIMARY KEY, v text, at timestamptz)', i);
			EXECUTE format('CREATE INDEX t%s_at ON public.t%s (at)', i, i);
		END LOOP;
	END \$\$"
done
psql_app "$src_pg" -q -c "CREATE TABLE public.events (id bigint, day int, payload text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day)"
for ((from = 1; from <= PARTS; from += 500)); do
	psql_app "$src_pg" -q -c "DO \$\$ BEGIN
		FOR i IN $from..$((from + 499 < PARTS ? from + 499 : PARTS)) LOOP
			EXECUTE format('CREATE TABLE public.events_%s PARTITION OF public.events FOR VALUES FROM (%s) TO (%s)', i, i, i + 1);
		END LOOP;
	END \$\$"
done

src_http=$(free_port); dst_http=$(free_port)
config() { # name port http [targets]
	cat <<YAML
processing_intervals:
  ddlwatcher: ${SCALE_DDLWATCHER_MS:-5000}
database:
  name: "$1"
  database: "app"
  hostname: "127.0.0.1"
  username: "teleport"
  password: "scale"
  port: $2
  sslmode: disable
server:
  hostname: "127.0.0.1"
  port: $3
YAML
	[ -z "${4:-}" ] || printf 'targets:\n  dst:\n    target_expression: "public.*"\n    endpoint:\n      hostname: "127.0.0.1"\n      port: %s\n' "$4"
}
config dst "$dst_pg" "$dst_http" > "$work/target.yml"
config src "$src_pg" "$src_http" "$dst_http" > "$work/source.yml"

cpu() { # total CPU ticks of a pid list
	local t=0 p
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] || continue
		set -- $(sed 's/^.*) //' "/proc/$p/stat")
		t=$((t + ${12} + ${13}))
	done
	echo "$t"
}
rss_mb() { awk '/VmHWM/ {printf "%d", $2/1024}' "/proc/$1/status"; }

start=$(date +%s.%N)
./teleport-scale -config "$work/target.yml" 2>"$work/teleport-target.log" & dst_pid=$!; pids+=($dst_pid)
./teleport-scale -config "$work/source.yml" 2>"$work/teleport-source.log" & src_pid=$!; pids+=($src_pid)
want=$((TABLES + PARTS + 1))
capturing=
while :; do
	if [ -z "$capturing" ] && grep -q 'msg="capturing changes"' "$work/teleport-source.log"; then
		capturing=1
		printf '== capturing %.1f s after the instances started\n' "$(echo "$(date +%s.%N) - $start" | bc)"
	fi
	n=$(psql_app "$dst_pg" -At -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')" 2>/dev/null || echo 0)
	[ "$n" -ge "$want" ] && break
	if ! kill -0 "$src_pid" 2>/dev/null || ! kill -0 "$dst_pid" 2>/dev/null; then
		echo "scale: an instance stopped:" >&2; tail -5 "$work"/teleport-*.log >&2; exit 1
	fi
	if [ "$(echo "$(date +%s.%N) - $start > 900" | bc)" = 1 ]; then
		echo "scale: after 15 minutes the target has $n of $want tables; last lines of the logs:" >&2
		tail -3 "$work/teleport-source.log" "$work/teleport-target.log" >&2; exit 1
	fi
	sleep 0.5
done
printf '== every table on the target %.1f s after the instances started (%d tables)\n' "$(echo "$(date +%s.%N) - $start" | bc)" "$want"

# Tables appear on the target as the parts of batch 1 commit: wait until
# the target has applied every batch cut so far, as the source knows it.
until [ "$(psql_app "$src_pg" -At -c "SELECT bool_and(applied_seq = next_seq - 1) FROM teleport.target_state")" = t ]; do sleep 0.5; done
printf '== every batch applied %.1f s after the instances started\n' "$(echo "$(date +%s.%N) - $start" | bc)"

sleep 10 # let the start-up work settle
# The source instance's own sessions (autovacuum and the like are PostgreSQL's).
backends() { psql_admin "$src_pg" postgres -At -c "SELECT pid FROM pg_stat_activity WHERE datname = 'app' AND application_name LIKE 'teleport %'"; }
bpids=$(backends)
c0=$(cpu "$src_pid"); b0=$(cpu $bpids)
sleep "$IDLE"
bpids=$(backends)
c1=$(cpu "$src_pid"); b1=$(cpu $bpids)
printf '== idle source over %s s: instance %.2f CPU-s/min, its PostgreSQL backends %.2f CPU-s/min\n' "$IDLE" \
	"$(echo "($c1 - $c0) / $clk * 60 / $IDLE" | bc -l)" "$(echo "($b1 - $b0) / $clk * 60 / $IDLE" | bc -l)"
echo "== peak memory: source instance $(rss_mb "$src_pid") MB, target instance $(rss_mb "$dst_pid") MB"

# Five schema changes of one table each, one at a time: from the statement
# on the source until the index is on the target.
took=()
for i in 1 2 3 4 5; do
	t0=$(date +%s.%N)
	psql_app "$src_pg" -c "CREATE INDEX t${i}_v ON public.t$i (v)"
	until [ "$(psql_app "$dst_pg" -At -c "SELECT count(*) FROM pg_indexes WHERE indexname = 't${i}_v'")" = 1 ]; do sleep 0.05; done
	took+=("$(echo "$(date +%s.%N) - $t0" | bc)")
done
sorted=$(printf '%s\n' "${took[@]}" | sort -n | tr '\n' ' ')
printf '== a CREATE INDEX on the source reached the target in (five, sorted) %s s: median %.1f s\n' "$sorted" "$(echo "$sorted" | awk '{print $3}')"
