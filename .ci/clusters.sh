# Throwaway PostgreSQL clusters on loopback for demo.sh and scale.sh, which
# source this file after setting bindir (the server binaries), bin (the
# teleport binary they built) and app_password. It makes $work, removed at
# exit with the clusters and the instances whose pids are in pids.

work=$(mktemp -d /tmp/teleport.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$work"
	as_pg=(runuser -u postgres --) # PostgreSQL refuses to run as root
fi
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for c in source target; do
		[ -d "$work/$c" ] && "${as_pg[@]}" "$bindir/pg_ctl" -D "$work/$c" -m immediate stop >/dev/null 2>&1 || true
	done
	rm -rf "$work" "$bin"
}
trap cleanup EXIT INT TERM

# free_port prints a loopback port nothing listens on, from a random start.
free_port() {
	local p=$((20000 + RANDOM % 30000))
	while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
	echo "$p"
}

psql_admin() { "$bindir/psql" -X -q -h 127.0.0.1 -p "$1" -U postgres -d "$2" -v ON_ERROR_STOP=1 "${@:3}"; }
psql_app() { PGPASSWORD=$app_password "$bindir/psql" -X -q -h 127.0.0.1 -p "$1" -U teleport -d app -v ON_ERROR_STOP=1 "${@:2}"; }

# start_cluster NAME PORT: a cluster in $work/NAME with the unprivileged
# role teleport and its database app; CLUSTER_OPTS adds server options.
start_cluster() {
	"${as_pg[@]}" "$bindir/initdb" -D "$work/$1" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
	"${as_pg[@]}" "$bindir/pg_ctl" -D "$work/$1" -l "$work/$1.log" -w \
		-o "-p $2 -k $work -c listen_addresses=127.0.0.1 -c fsync=off ${CLUSTER_OPTS:-}" start >/dev/null
	psql_admin "$2" postgres -c "CREATE ROLE teleport LOGIN NOSUPERUSER NOREPLICATION PASSWORD '$app_password'" \
		-c "CREATE DATABASE app OWNER teleport" >/dev/null
}
