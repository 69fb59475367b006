#!/usr/bin/env bash
# Teleport demo: two throwaway PostgreSQL clusters on loopback, a source and a
# target instance configured as in the upstream README (public.* replicated
# into the target's "test" schema), a small workload, and the rows arriving.
# Everything lives in a temporary directory removed at exit. Run: make demo
set -euo pipefail
cd "$(dirname "$0")"

DURATION=${DEMO_SECONDS:-15}
find_bindir() {
	if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
		pg_config --bindir
	else
		ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
	fi
}
bindir=${PG_BINDIR:-$(find_bindir)}
if [ -z "${PG_BINDIR:-}" ] && { [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; }; then
	# As .ci/run does: the PostgreSQL server from the distribution.
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "== installing the PostgreSQL server (apt-get install postgresql postgresql-contrib)"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib >/dev/null
		bindir=$(find_bindir)
	fi
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
	echo "demo: PostgreSQL server binaries not found: run make demo as root to have them installed, or install them yourself (sudo apt-get install postgresql) and run it again, or set PG_BINDIR to their directory" >&2
	exit 1
fi

echo "== building teleport"
bin=teleport-demo app_password=demo
go build -o "$bin" .
. .ci/clusters.sh

src_pg=$(free_port); start_cluster source "$src_pg"
dst_pg=$(free_port); start_cluster target "$dst_pg"
echo "== clusters up: source on 127.0.0.1:$src_pg, target on 127.0.0.1:$dst_pg (role teleport: NOSUPERUSER NOREPLICATION)"

schema='CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL DEFAULT 0);
        CREATE TABLE transfers (id bigserial PRIMARY KEY, from_id int, to_id int, amount numeric(12,2), at timestamptz DEFAULT now());'
psql_app "$src_pg" -c "SET search_path = public; $schema" \
	-c "INSERT INTO public.accounts (owner, balance) SELECT 'owner ' || i, 1000 FROM generate_series(1, 100) i" \
	-c "INSERT INTO public.transfers (from_id, to_id, amount, at)
	    SELECT 1 + i % 100, 1 + (i * 7) % 100, 0, now() - interval '1 year' + i * interval '1 second' FROM generate_series(1, 300000) i" \
	-c "ANALYZE public.accounts, public.transfers"
echo "== tables created and filled on the source only (100 accounts, 300000 old transfers):"
echo "   Teleport creates them on the target, in schema test, and the initial load copies their rows"

src_http=$(free_port); dst_http=$(free_port)
cat > "$work/source_config.yml" <<YAML
batch_size: 10000
processing_intervals:
  batcher: 100
  transmitter: 100
  applier: 100
  vacuum: 500
  ddlwatcher: 5000
database:
  name: "finops-db"
  database: "app"
  hostname: "127.0.0.1"
  username: "teleport"
  password: "demo"
  port: $src_pg
  sslmode: disable
server:
  hostname: "127.0.0.1"
  port: $src_http
targets:
  my-target:
    target_expression: "public.*"
    endpoint:
      hostname: "127.0.0.1"
      port: $dst_http
    apply_schema: "test"
YAML
cat > "$work/target_config.yml" <<YAML
batch_size: 10000
processing_intervals:
  batcher: 100
  transmitter: 100
  applier: 100
  vacuum: 500
  ddlwatcher: 5000
database:
  name: "my-target"
  database: "app"
  hostname: "127.0.0.1"
  username: "teleport"
  password: "demo"
  port: $dst_pg
  sslmode: disable
server:
  hostname: "127.0.0.1"
  port: $dst_http
YAML

./teleport-demo -config "$work/target_config.yml" 2>"$work/target.log" & pids+=($!)
./teleport-demo -config "$work/source_config.yml" 2>"$work/source.log" & pids+=($!)
for log in target source; do
	for _ in $(seq 100); do grep -q 'msg=listening' "$work/$log.log" 2>/dev/null && break; sleep 0.1; done
	grep -q 'msg=listening' "$work/$log.log" || { echo "demo: the $log instance did not start:" >&2; cat "$work/$log.log" >&2; exit 1; }
done
echo "== instances up: source API on :$src_http, target API on :$dst_http (logs in $work/*.log)"

echo "== workload for ${DURATION}s on the source: transfers, one transaction each, while the initial load runs"
(
	end=$((SECONDS + DURATION))
	while [ $SECONDS -lt $end ]; do
		psql_app "$src_pg" -c "BEGIN;
			WITH p AS (SELECT 1 + floor(random() * 100)::int AS a, 1 + floor(random() * 100)::int AS b, round((random() * 50)::numeric, 2) AS m)
			INSERT INTO public.transfers (from_id, to_id, amount) SELECT a, b, m FROM p;
			UPDATE public.accounts SET balance = balance - t.amount FROM (SELECT from_id, amount FROM public.transfers ORDER BY id DESC LIMIT 1) t WHERE id = t.from_id;
			UPDATE public.accounts SET balance = balance + t.amount FROM (SELECT to_id, amount FROM public.transfers ORDER BY id DESC LIMIT 1) t WHERE id = t.to_id;
			COMMIT;" >/dev/null
	done
) & load=$!

echo "== initial load: teleport -config source_config.yml -mode initial-load -load-target my-target"
./teleport-demo -config "$work/source_config.yml" -mode initial-load -load-target my-target 2>&1 |
	grep -E 'initial load (begun|copied|done)|level=(WARN|ERROR)|^teleport:' | sed 's/^/   /'

printf '%-7s %-24s %-24s %s\n' "second" "source: transfers, sum" "target: transfers, sum" "lag (s)"
count_q="SELECT count(*) || ', ' || coalesce(sum(amount), 0) FROM %s.transfers"
for i in $(seq 1 $((DURATION + 5))); do
	# The target first: counted after it, the source has at least its rows.
	t=$(psql_app "$dst_pg" -At -c "$(printf "$count_q" test)" 2>/dev/null || echo "(no table yet)")
	s=$(psql_app "$src_pg" -At -c "$(printf "$count_q" public)")
	# Lag, as /status reports it: age, on the source's clock, of the oldest
	# batch the target has not applied; 0 when it has them all.
	lag=$(psql_app "$src_pg" -At -c "SELECT coalesce(round(extract(epoch FROM now() - b.tick_time)::numeric, 2), 0)
		FROM teleport.target_state g LEFT JOIN teleport.batch b ON b.target = g.name AND b.seq = g.applied_seq + 1" 2>/dev/null || echo "-")
	printf '%-7s %-24s %-24s %s\n' "$i" "$s" "$t" "${lag:--}"
	sleep 1
	if ! kill -0 "$load" 2>/dev/null && [ "$s" = "$t" ]; then break; fi
done
wait "$load" || true

src_sum=$(psql_app "$src_pg" -At -c "SELECT md5(string_agg(a::text, ',' ORDER BY id)) FROM public.accounts a")
dst_sum=$(psql_app "$dst_pg" -At -c "SELECT md5(string_agg(a::text, ',' ORDER BY id)) FROM test.accounts a")
if [ "$src_sum" = "$dst_sum" ]; then
	echo "== accounts identical on both sides (md5 $src_sum)"
else
	echo "== accounts differ: source $src_sum, target $dst_sum; see $work/*.log" >&2
	tail -n 20 "$work/source.log" "$work/target.log" >&2
	exit 1
fi

echo "== a migration on the source, used at once: a column added, a column renamed"
psql_app "$src_pg" -c "ALTER TABLE public.accounts ADD COLUMN note text;
	ALTER TABLE public.transfers RENAME COLUMN at TO made_at;
	UPDATE public.accounts SET note = 'migrated' WHERE id <= 3"
cols_q="SELECT string_agg(table_name || '.' || column_name, ', ' ORDER BY table_name, ordinal_position)
	FROM information_schema.columns WHERE table_schema = 'test' AND column_name IN ('note', 'made_at')"
for i in $(seq 1 20); do
	cols=$(psql_app "$dst_pg" -At -c "$cols_q")
	notes=$(psql_app "$dst_pg" -At -c "SELECT count(*) FROM test.accounts WHERE note = 'migrated'" 2>/dev/null || echo 0)
	if [ "$cols" = "accounts.note, transfers.made_at" ] && [ "$notes" = 3 ]; then
		echo "== target has $cols, and the 3 rows written with the new column, ${i}00 ms later at most"
		break
	fi
	sleep 0.1
	if [ "$i" = 20 ]; then
		echo "== the migration did not reach the target in 2 s (columns: $cols); see $work/*.log" >&2
		exit 1
	fi
done

echo "== teleport -config source_config.yml -mode verify -target my-target (every table, both sides at one point of the stream)"
if ! ./teleport-demo -config "$work/source_config.yml" -mode verify -target my-target 2>"$work/verify.log" | sed 's/^/   /'; then
	echo "== verify did not find the tables equal; see $work/verify.log" >&2
	cat "$work/verify.log" >&2
	exit 1
fi
