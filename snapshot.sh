#!/usr/bin/env bash
# Teleport's own tables on a source under a long snapshot. pgbench writes
# SNAPSHOT_RATE transactions a second (300) to a source replicated to a
# target (loaded with -mode initial-load) for two phases of
# SNAPSHOT_SECONDS (120) + 30 s each: the first as a reference, the second
# with a REPEATABLE READ snapshot held open for SNAPSHOT_SECONDS (as a
# report or pg_dump holds one), then 60 s more of writes after it ends.
# Prints, every minute, the size of Teleport's tables on the source (events,
# and the rest), their dead rows and the rows updated and deleted in them
# since the start, and each phase's peak (sampled every 10 s). Run: make
# snapshot (SNAPSHOT_SECONDS=600 for the ten-minute snapshot of the README).
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_HELD=${SNAPSHOT_SECONDS:-120}
RATE=${SNAPSHOT_RATE:-300}
bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$bindir/initdb" ] || { echo "snapshot: no PostgreSQL server binaries: set PG_BINDIR" >&2; exit 1; }
pgbench=$bindir/pgbench
[ -x "$pgbench" ] || pgbench=$(command -v pgbench) || { echo "snapshot: needs pgbench (apt-get install postgresql-contrib)" >&2; exit 1; }

bin=teleport-snapshot app_password=snapshot
go build -o "$bin" .
. .ci/clusters.sh
src_pg=$(free_port); start_cluster source "$src_pg"
dst_pg=$(free_port); start_cluster target "$dst_pg"
PGPASSWORD=$app_password "$pgbench" -q -i -s 5 -h 127.0.0.1 -p "$src_pg" -U teleport app >/dev/null 2>&1

src_http=$(free_port); dst_http=$(free_port)
config() { # name port http [target http]
	printf 'database:\n  name: "%s"\n  database: "app"\n  hostname: "127.0.0.1"\n  username: "teleport"\n  password: "%s"\n  port: %s\n  sslmode: disable\nserver:\n  hostname: "127.0.0.1"\n  port: %s\n' \
		"$1" "$app_password" "$2" "$3"
	[ -z "${4:-}" ] || printf 'targets:\n  dst:\n    target_expression: "public.*"\n    endpoint:\n      hostname: "127.0.0.1"\n      port: %s\n' "$4"
}
config dst "$dst_pg" "$dst_http" > "$work/target.yml"
config src "$src_pg" "$src_http" "$dst_http" > "$work/source.yml"
./$bin -config "$work/target.yml" 2>"$work/teleport-target.log" & pids+=($!)
./$bin -config "$work/source.yml" 2>"$work/teleport-source.log" & pids+=($!)
until [ "$(psql_app "$dst_pg" -At -c "SELECT count(*) FROM pg_class WHERE relname = 'pgbench_accounts'" 2>/dev/null)" = 1 ]; do sleep 0.5; done
./$bin -config "$work/source.yml" -mode initial-load -load-target dst >"$work/load.log" 2>&1

# MB of Teleport's tables (with their indexes and TOAST): events, the rest.
sizes() {
	psql_app "$src_pg" -At -F ' ' -c "
		SELECT round(coalesce(sum(pg_catalog.pg_total_relation_size(c.oid)) FILTER (WHERE c.relname ~ '^event(_[0-2])?\$'), 0) / 1048576.0, 2),
		       round(coalesce(sum(pg_catalog.pg_total_relation_size(c.oid)) FILTER (WHERE c.relname !~ '^event(_[0-2])?\$'), 0) / 1048576.0, 2)
		FROM pg_catalog.pg_class c WHERE c.relnamespace = 'teleport'::regnamespace AND c.relkind = 'r'"
}
stats() { # dead rows, and rows updated or deleted since the start, in Teleport's tables
	psql_app "$src_pg" -At -F ' ' -c "SELECT sum(n_dead_tup), sum(n_tup_upd), sum(n_tup_del) FROM pg_catalog.pg_stat_user_tables WHERE schemaname = 'teleport'"
}
peak_events=0 peak_rest=0
sample() { # the sizes now, into the phase's peaks
	read -r ev rest < <(sizes)
	peak_events=$(echo "if ($ev > $peak_events) $ev else $peak_events" | bc)
	peak_rest=$(echo "if ($rest > $peak_rest) $rest else $peak_rest" | bc)
}
measure() { # label
	sample
	read -r dead upd del < <(stats)
	printf '%-28s %10s %10s %10s %10s %10s\n' "$1" "$ev" "$rest" "$dead" "$upd" "$del"
}
phase() { # name hold
	peak_events=0 peak_rest=0
	local dur=$((SECONDS_HELD + 30)) t
	PGPASSWORD=$app_password "$pgbench" -n -c 4 -j 2 -R "$RATE" -T "$dur" -h 127.0.0.1 -p "$src_pg" -U teleport app >"$work/pgbench-$1.log" 2>&1 &
	local pb=$!
	if [ "$2" = 1 ]; then
		sleep 10
		psql_app "$src_pg" -c "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pgbench_branches; SELECT pg_sleep($SECONDS_HELD); COMMIT" >/dev/null &
		pids+=($!)
		t=10
	else
		t=0
	fi
	while [ $((t + 10)) -le "$dur" ]; do
		sleep 10; t=$((t + 10))
		if [ $((t % 60)) = 0 ]; then measure "$1 ${t}s"; else sample; fi
	done
	wait "$pb"
	measure "$1 end (${dur}s)"
}
printf '%-28s %10s %10s %10s %10s %10s\n' "" "events MB" "rest MB" "dead rows" "updated" "deleted"
measure "start"
phase "no snapshot" 0
ref_events=$peak_events ref_rest=$peak_rest
phase "snapshot held ${SECONDS_HELD}s" 1
held_events=$peak_events held_rest=$peak_rest
PGPASSWORD=$app_password "$pgbench" -n -c 4 -j 2 -R "$RATE" -T 60 -h 127.0.0.1 -p "$src_pg" -U teleport app >"$work/pgbench-after.log" 2>&1
measure "60 s after it ended"
applied=$(psql_app "$src_pg" -At -c "SELECT format('%s of %s batches applied', applied_seq, next_seq - 1) FROM teleport.target_state")
echo "== target: $applied"
echo "== peak without a snapshot: events $ref_events MB, the rest $ref_rest MB"
echo "== peak with one held ${SECONDS_HELD} s: events $held_events MB, the rest $held_rest MB"
printf '== ratio: events %.2f, the rest %.2f\n' "$(echo "$held_events / $ref_events" | bc -l)" "$(echo "$held_rest / $ref_rest" | bc -l)"
grep -h "tps = " "$work"/pgbench-*.log | sed 's/^/== pgbench: /'
