#!/usr/bin/env bash
# Postfach on PostgreSQL, one node and two nodes on one database, next to Postfach on SQLite, in
# one run on this machine (issue 15).
#
# Starts a private PostgreSQL cluster (initdb on a temporary directory, a free loopback port,
# PostgreSQL's durability defaults: fsync on, synchronous_commit on), a Postfach on SQLite, and
# two Postfach nodes sharing one database, each with the same 50 accounts. Runs the `mixed` and
# `append` scenarios of postfach-bench against the SQLite node, against one PostgreSQL node, and
# against both PostgreSQL nodes at once (two postfach-bench processes, half the clients each;
# their throughputs are added). Only the processes this script starts are stopped.
#
# Usage: bench/postgres-nodes.sh [--seconds N] [--runs N] [--no-build] [--out DIR]
# Binaries come from ${CARGO_TARGET_DIR:-target}/release. Dovecot's figures for the same
# scenarios come from bench/compare-dovecot.sh (BENCHMARKS.md puts them side by side).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
SECONDS_MIXED=15
SECONDS_APPEND=10
RUNS=1
BUILD=1
OUT=""
USERS=50
PASSWORD=benchpass
DEFAULT_PATTERN='bench{n}'
MIXED_CLIENTS=50
APPEND_CLIENTS=10

while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_MIXED="$2"; SECONDS_APPEND="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-$TARGET/bench-results/postgres-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log() { echo "== $*" >&2; }

if [ "$BUILD" = 1 ]; then
  log "building postfach and postfach-bench (release)"
  (cd "$ROOT" && cargo build --release -q -p postfach -p postfach-bench)
fi
POSTFACH="$TARGET/release/postfach"
BENCH="$TARGET/release/postfach-bench"

WORK="$(mktemp -d)"
chmod 755 "$WORK"
PIDS=()
PG_BIN="$(for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && echo "$d"; done | tail -n 1)"
[ -n "$PG_BIN" ] || { echo "PostgreSQL is not installed (apt-get install postgresql-15)" >&2; exit 1; }
PG_USER=""
if [ "$(id -u)" = 0 ]; then
  for u in postgres postfach-pg; do id "$u" >/dev/null 2>&1 && { PG_USER=$u; break; }; done
fi
as_pg() { if [ -n "$PG_USER" ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/pg"
[ -n "$PG_USER" ] && chown "$PG_USER:" "$WORK/pg"
PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_pg "$PG_BIN/initdb" -D "$WORK/pg/data" --auth=trust -U postgres -E UTF8 --locale=C >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" \
  -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=200" -w start >/dev/null
psql "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres" -qc "CREATE DATABASE postfach" >/dev/null
PG_URL="host=127.0.0.1 port=$PG_PORT user=postgres dbname=postfach"
log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"

config() { # name store-section
  mkdir -p "$WORK/$1"
  cat >"$WORK/$1/postfach.toml" <<EOF
data_dir = "$WORK/$1/data"
[imap]
listen = ["127.0.0.1:0"]
listen_tls = ["127.0.0.1:0"]
allow_plaintext_auth = true
max_connections = 20000
[lmtp]
listen = []
[managesieve]
listen = []
[log]
level = "warn"
$2
EOF
}
config sqlite ""
config pg1 "[store]
backend = \"postgres\"
url = \"$PG_URL\"
pool_size = 32"
config pg2 "[store]
backend = \"postgres\"
url = \"$PG_URL\"
pool_size = 32"
for n in $(seq 1 "$USERS"); do
  for c in sqlite pg1; do
    printf '%s\n' "$PASSWORD" | "$POSTFACH" user add "bench$n" --password-stdin --config "$WORK/$c/postfach.toml" >/dev/null
  done
  # The second node's half of the clients works on accounts of its own (as one process's
  # clients do), so neither bench process sees the other's changes as protocol errors.
  printf '%s\n' "$PASSWORD" | "$POSTFACH" user add "second$n" --password-stdin --config "$WORK/pg1/postfach.toml" >/dev/null
done

start() { # name -> sets PORT_<name>
  "$POSTFACH" serve --config "$WORK/$1/postfach.toml" >"$WORK/$1/stdout" 2>"$WORK/$1/stderr" &
  PIDS+=("$!")
  for _ in $(seq 1 100); do
    grep -q "listening imaps" "$WORK/$1/stdout" 2>/dev/null && break
    sleep 0.1
  done
  local port
  port="$(sed -n 's/^postfach: listening imap 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/$1/stdout")"
  [ -n "$port" ] || { cat "$WORK/$1/stderr" >&2; echo "$1 did not start" >&2; exit 1; }
  printf -v "PORT_$1" '%s' "$port"
}
start sqlite
start pg1
start pg2

bench() { # label port scenario clients json [user-pattern users]
  local pattern="${6:-$DEFAULT_PATTERN}"
  local args=(--port "$2" --users "${7:-$USERS}" --user-pattern "$pattern" --password "$PASSWORD"
    --label "$1" --json "$5" --quiet)
  case "$3" in
    mixed) args+=(mixed --clients "$4" --duration "$SECONDS_MIXED") ;;
    append) args+=(append --clients "$4" --duration "$SECONDS_APPEND") ;;
  esac
  "$BENCH" "${args[@]}" >"${5%.json}.txt" 2>&1
}

# The headline figure of a result: commands/s of `mixed`, messages/s at the most clients of
# `append`; protocol errors too.
figure() {
  python3 - "$@" <<'EOF'
import json, sys
total, errors = 0.0, 0
for path in sys.argv[1:]:
    d = json.load(open(path))
    errors += d.get("protocol_errors", 0)
    figs = {f["key"]: f["value"] for f in d["figures"]}
    if "mixed.total.cmd_per_s" in figs:
        total += figs["mixed.total.cmd_per_s"]
    else:
        keys = [k for k in figs if k.startswith("append.c") and k.endswith(".msg_per_s")]
        best = max(keys, key=lambda k: int(k.split(".")[1][1:]))
        total += figs[best]
print(f"{total:.0f} {errors}")
EOF
}

{
  echo "# Postfach: SQLite, PostgreSQL one node, PostgreSQL two nodes; $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "| scenario | run | SQLite | PostgreSQL, 1 node | PostgreSQL, 2 nodes | errors (S/1/2) |"
  echo "|---|---|---|---|---|---|"
} >"$OUT/table.md"
for scenario in mixed append; do
  if [ "$scenario" = mixed ]; then clients=$MIXED_CLIENTS; unit="cmd/s"; else clients=$APPEND_CLIENTS; unit="msg/s"; fi
  half=$((clients / 2))
  for run in $(seq 1 "$RUNS"); do
    log "$scenario run $run: SQLite"
    bench sqlite "$PORT_sqlite" "$scenario" "$clients" "$OUT/sqlite-$scenario-$run.json"
    log "$scenario run $run: PostgreSQL, one node"
    bench pg1 "$PORT_pg1" "$scenario" "$clients" "$OUT/pg1-$scenario-$run.json"
    log "$scenario run $run: PostgreSQL, two nodes"
    bench pg2a "$PORT_pg1" "$scenario" "$half" "$OUT/pg2a-$scenario-$run.json" "bench{n}" "$half" &
    a=$!
    bench pg2b "$PORT_pg2" "$scenario" "$((clients - half))" "$OUT/pg2b-$scenario-$run.json" "second{n}" "$half"
    wait "$a"
    read -r s se < <(figure "$OUT/sqlite-$scenario-$run.json")
    read -r p1 p1e < <(figure "$OUT/pg1-$scenario-$run.json")
    read -r p2 p2e < <(figure "$OUT/pg2a-$scenario-$run.json" "$OUT/pg2b-$scenario-$run.json")
    echo "| $scenario ($clients clients) | $run | $s $unit | $p1 $unit | $p2 $unit | $se/$p1e/$p2e |" >>"$OUT/table.md"
  done
done
cat "$OUT/table.md"
