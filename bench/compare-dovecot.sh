#!/usr/bin/env bash
# Postfach against Dovecot, side by side, on this machine and in one run.
#
# Installs Dovecot from Debian's packages when missing, starts a private Postfach and a private
# Dovecot on free loopback ports (same accounts, same password hashes, same corpus), runs every
# postfach-bench scenario against both (alternating, several runs), and prints one table with
# the medians and the ratio Postfach/Dovecot for each figure. Only the processes this script
# starts are stopped. Results (JSON per run, table.md) go to --out.
#
# Fairness: Dovecot keeps its durability defaults (mail_fsync = optimized) with Maildir and the
# high-performance login mode (service_count = 0); Postfach runs SQLite WAL with
# synchronous=FULL (an fsync per commit), i.e. at least as durable. Both verify the very same
# argon2id hash strings (Postfach's, copied into Dovecot's passwd-file), and both use the same
# TLS certificate and key.
#
# Usage: bench/compare-dovecot.sh [--runs N] [--sizes 10000,100000] [--quick]
#            [--scenarios "mixed append append-imaplib big-mailbox idle handshakes"]
#            (also: mixed-200, statemachine, statemachine-200, and mixed-rate and
#            statemachine-rate: the same loads at a fixed 1500 and 400 commands/s, for latency)
#            (also: fill, which first gives accounts bench1..bench$FILL_USERS an INBOX of
#            $FILL_MESSAGES messages each on both servers, so that later scenarios run on an
#            installation that holds mail; e.g. --scenarios "fill append" --fill 1000x1000)
#            [--fill ACCOUNTSxMESSAGES]
#            [--big-skip uid_search_text,store_flags]  (big-mailbox operations not to run)
#            [--work DIR] [--out DIR]
#            [--no-build]   (use the binaries already in target/release)
# The work directory (default /var/tmp/postfach-bench) keeps the filled big mailboxes of both
# servers between runs ("filled once, then reused"); delete it to start from scratch.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS=3
SIZES=10000,100000
SCENARIOS="mixed append append-imaplib big-mailbox idle handshakes"
WORK=/var/tmp/postfach-bench
OUT=""
USERS=50
PASSWORD=benchpass
MIXED_CLIENTS=50
MIXED_SECONDS=30
STATE_CLIENTS=50
STATE_SECONDS=20
MIXED_RATE=1500
STATE_RATE=400
APPEND_CLIENTS=10
APPEND_SECONDS=15
IDLE_CLIENTS=500
HS_CLIENTS=8
HS_SECONDS=10
BIG_REPEAT=3
BIG_SKIP=""
FILL_USERS=1000
FILL_MESSAGES=1000
BUILD=1

while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --sizes) SIZES="$2"; shift 2 ;;
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --fill) FILL_USERS="${2%x*}"; FILL_MESSAGES="${2#*x}"; shift 2 ;;
    --big-skip) BIG_SKIP="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --quick)
      RUNS=1; SIZES=10000; MIXED_SECONDS=10; STATE_SECONDS=10; APPEND_SECONDS=5; IDLE_CLIENTS=100; HS_SECONDS=5; BIG_REPEAT=2
      shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
# 200 mixed clients need 200 accounts (clients sharing an account race on sequence numbers).
case " $SCENARIOS " in *" mixed-200 "*) [ "$USERS" -ge 200 ] || USERS=200 ;; esac
case " $SCENARIOS " in *" fill "*) [ "$USERS" -ge "$FILL_USERS" ] || USERS=$FILL_USERS ;; esac
OUT="${OUT:-$ROOT/target/bench-results/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$WORK" "$OUT"
# Hundreds of idle connections need descriptors on both ends.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

log() { echo "== $*" >&2; }

# --- Dovecot from Debian, when missing ------------------------------------------------------
if ! command -v dovecot >/dev/null 2>&1; then
  log "installing dovecot-imapd"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends dovecot-imapd >/dev/null
fi
command -v sqlite3 >/dev/null 2>&1 || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends sqlite3 >/dev/null || true
}

# --- Build -----------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  log "building postfach and postfach-bench (release)"
  (cd "$ROOT" && cargo build --release -q -p postfach -p postfach-bench)
fi
POSTFACH="${CARGO_TARGET_DIR:-$ROOT/target}/release/postfach"
BENCH="${CARGO_TARGET_DIR:-$ROOT/target}/release/postfach-bench"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

PF_PID=""
DC_CONF=""
DC_PID=""
cleanup() {
  # The stop functions exist once the servers have been set up.
  if declare -F stop_postfach >/dev/null; then stop_postfach; fi
  if declare -F stop_dovecot >/dev/null; then stop_dovecot; fi
}
trap cleanup EXIT

# --- Postfach: private instance --------------------------------------------------------------
PF_DIR="$WORK/postfach"
mkdir -p "$PF_DIR"
PF_CONF="$PF_DIR/postfach.toml"
cat >"$PF_CONF" <<EOF
data_dir = "$PF_DIR/data"
[imap]
listen = ["127.0.0.1:0"]
listen_tls = ["127.0.0.1:0"]
allow_plaintext_auth = true
max_connections = 20000
[managesieve]
listen = []
[web]
listen = []
[log]
level = "warn"
EOF
existing="$("$POSTFACH" user list --config "$PF_CONF" 2>/dev/null || true)"
# bench1..N for the per-account scenarios; `stress` is the one account of the state machine.
for name in $(seq -f 'bench%g' 1 "$USERS") stress; do
  if ! grep -qx "$name" <<<"$existing"; then
    printf '%s\n' "$PASSWORD" | "$POSTFACH" user add "$name" --password-stdin --config "$PF_CONF" >/dev/null
  fi
done
start_postfach() {
  log "starting postfach"
  : >"$PF_DIR/stdout"
  "$POSTFACH" serve --config "$PF_CONF" >"$PF_DIR/stdout" 2>"$PF_DIR/stderr" &
  PF_PID=$!
  for _ in $(seq 1 100); do
    grep -q "listening imaps" "$PF_DIR/stdout" 2>/dev/null && break
    sleep 0.1
  done
  PF_PORT="$(sed -n 's/^postfach: listening imap 127.0.0.1:\([0-9]*\)$/\1/p' "$PF_DIR/stdout")"
  PF_TLS_PORT="$(sed -n 's/^postfach: listening imaps 127.0.0.1:\([0-9]*\)$/\1/p' "$PF_DIR/stdout")"
  [ -n "$PF_PORT" ] && [ -n "$PF_TLS_PORT" ] || { cat "$PF_DIR/stderr" >&2; echo "postfach did not start" >&2; exit 1; }
}
stop_postfach() {
  if [ -n "$PF_PID" ] && kill -0 "$PF_PID" 2>/dev/null; then
    kill -TERM "$PF_PID" 2>/dev/null || true
    wait "$PF_PID" 2>/dev/null || true
  fi
  PF_PID=""
}
start_postfach

# --- Dovecot: private instance ---------------------------------------------------------------
DC_DIR="$WORK/dovecot"
mkdir -p "$DC_DIR/run" "$DC_DIR/state" "$DC_DIR/mail"
id dovebench >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin dovebench
BUID="$(id -u dovebench)"
BGID="$(id -g dovebench)"
chown dovebench:dovebench "$DC_DIR/mail"
# The same argon2id hashes Postfach verifies (libsodium reads the parameters from the string).
: >"$DC_DIR/passwd.new"
DB="$(ls "$PF_DIR"/data/*.db 2>/dev/null | head -n1 || true)"
for n in $(seq 1 "$USERS"); do
  hash=""
  if [ -n "$DB" ] && command -v sqlite3 >/dev/null 2>&1; then
    hash="$(sqlite3 "file:$DB?mode=ro" "SELECT password_hash FROM accounts WHERE name = 'bench$n'" 2>/dev/null || true)"
  fi
  case "$hash" in
    '$argon2id$'*) hash="{ARGON2ID}$hash" ;;
    *) hash="$(doveadm pw -s ARGON2ID -p "$PASSWORD")" ;;
  esac
  echo "bench$n:$hash:$BUID:$BGID::$DC_DIR/mail/bench$n::" >>"$DC_DIR/passwd.new"
done
# The state machine logs in hundreds of times a second as one account: Dovecot gets this
# account's password in cleartext ({PLAIN}), its cheapest LOGIN with or without the auth cache,
# so the comparison is about IMAP commands.
echo "stress:{PLAIN}$PASSWORD:$BUID:$BGID::$DC_DIR/mail/stress::" >>"$DC_DIR/passwd.new"
mv "$DC_DIR/passwd.new" "$DC_DIR/passwd"
chmod 0640 "$DC_DIR/passwd"
chgrp dovecot "$DC_DIR/passwd"
DC_PORT="$(free_port)"
DC_TLS_PORT="$(free_port)"
DC_CONF="$DC_DIR/dovecot.conf"
cat >"$DC_CONF" <<EOF
# Private Dovecot for postfach-bench; generated by bench/compare-dovecot.sh.
protocols = imap
listen = 127.0.0.1
base_dir = $DC_DIR/run
state_dir = $DC_DIR/state
instance_name = postfach-bench
log_path = $DC_DIR/dovecot.log
info_log_path = $DC_DIR/dovecot.log
mail_location = maildir:~/Maildir
mail_uid = dovebench
mail_gid = dovebench
first_valid_uid = 1
# Durability: Dovecot's default (fsync where it matters), stated for the record.
mail_fsync = optimized
disable_plaintext_auth = no
auth_mechanisms = plain login
# Postfach remembers a verified password for 5 minutes; Dovecot's auth cache is its
# counterpart (off by default), so it is on here with the same lifetime.
auth_cache_size = 10M
auth_cache_ttl = 5 mins
passdb {
  driver = passwd-file
  args = scheme=ARGON2ID $DC_DIR/passwd
}
userdb {
  driver = passwd-file
  args = $DC_DIR/passwd
}
ssl = yes
ssl_cert = <$PF_DIR/data/tls/cert.pem
ssl_key = <$PF_DIR/data/tls/key.pem
ssl_dh = </usr/share/dovecot/dh.pem
default_client_limit = 5000
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DC_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $DC_TLS_PORT
    ssl = yes
  }
  # High-performance mode: long-lived login processes, one per core.
  service_count = 0
  process_min_avail = $(nproc)
  vsz_limit = 1G
}
service imap {
  process_limit = 5000
  # Dovecot's default (256 MB) is too small to open a million-message Maildir: the first SELECT
  # dies in maildir_uidlist_sync with "Out of memory (service imap { vsz_limit=256 MB })".
  vsz_limit = 4G
}
service anvil {
  client_limit = 12000
}
protocol imap {
  # A policy limit (default 10 per user and IP), not a performance setting: the benchmark
  # opens many sessions per account from 127.0.0.1.
  mail_max_userip_connections = 5000
}
EOF
start_dovecot() {
  log "starting dovecot"
  rm -f "$DC_DIR/run/master.pid"
  dovecot -c "$DC_CONF"
  for _ in $(seq 1 100); do
    [ -s "$DC_DIR/run/master.pid" ] && break
    sleep 0.1
  done
  DC_PID="$(cat "$DC_DIR/run/master.pid")"
  sleep 1
}
stop_dovecot() {
  if [ -n "$DC_PID" ] && kill -0 "$DC_PID" 2>/dev/null; then
    doveadm -c "$DC_CONF" stop >/dev/null 2>&1 || kill -TERM "$DC_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$DC_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  DC_PID=""
}
start_dovecot

# --- Scenarios ------------------------------------------------------------------------------
bench() { # server scenario run extra-args...
  local server="$1" scenario="$2" run="$3"
  shift 3
  local port tls_port pid
  if [ "$server" = postfach ]; then port=$PF_PORT; tls_port=$PF_TLS_PORT; pid=$PF_PID
  else port=$DC_PORT; tls_port=$DC_TLS_PORT; pid=$DC_PID; fi
  local users=$USERS
  [ "$scenario" = fill ] && users=$FILL_USERS
  local args=(--port "$port" --users "$users" --password "$PASSWORD" --label "$server"
    --json "$OUT/$server-$scenario-$run.json" --quiet)
  case "$scenario" in
    mixed) args+=(mixed --clients "$MIXED_CLIENTS" --duration "$MIXED_SECONDS") ;;
    mixed-200) args+=(mixed --clients 200 --duration "$MIXED_SECONDS") ;;
    # A stress tester's default random state machine: every client on one account's INBOX.
    statemachine) args+=(--user-pattern stress statemachine --clients "$STATE_CLIENTS" --duration "$STATE_SECONDS") ;;
    statemachine-200) args+=(--user-pattern stress statemachine --clients 200 --duration "$STATE_SECONDS") ;;
    # Latency at equal load: both servers get the same commands per second (an open loop),
    # below what either can do, so p50/p99 compare like with like.
    mixed-rate) args+=(mixed --clients "$MIXED_CLIENTS" --duration "$MIXED_SECONDS" --rate "$MIXED_RATE") ;;
    statemachine-rate) args+=(--user-pattern stress statemachine --clients "$STATE_CLIENTS" --duration "$STATE_SECONDS" --rate "$STATE_RATE") ;;
    append) args+=(append --clients "$APPEND_CLIENTS" --duration "$APPEND_SECONDS") ;;
    # As Python's imaplib writes: Nagle on, synchronising literals, the CRLF in its own write.
    append-imaplib) args+=(append --imaplib --clients "$APPEND_CLIENTS" --duration "$APPEND_SECONDS") ;;
    big-mailbox) args+=(big-mailbox --sizes "$SIZES" --repeat "$BIG_REPEAT" ${BIG_SKIP:+--skip "$BIG_SKIP"}) ;;
    fill) args+=(fill --messages "$FILL_MESSAGES" --clients 8) ;;
    idle) args+=(idle --clients "$IDLE_CLIENTS" --server-pid "$pid") ;;
    handshakes) args+=(--tls-port "$tls_port" handshakes --clients "$HS_CLIENTS" --duration "$HS_SECONDS") ;;
  esac
  log "$server $scenario run $run"
  "$BENCH" "${args[@]}" >"$OUT/$server-$scenario-$run.txt" 2>&1 || {
    echo "   failed; see $OUT/$server-$scenario-$run.txt" >&2
    tail -n 3 "$OUT/$server-$scenario-$run.txt" >&2
  }
}

# After a fill, Postfach's indexer writes the texts into the accounts' index files in the
# background; the scenarios after it should measure the installation, not that catch-up.
wait_for_index() {
  local db="$PF_DIR/data/postfach.db" start=$SECONDS left
  command -v sqlite3 >/dev/null 2>&1 || return 0
  while :; do
    left="$(sqlite3 "file:$db?mode=ro" "SELECT count(*) FROM unindexed_bodies u JOIN body_index bi
      ON bi.body_id = u.body_id WHERE bi.text_state = 0" 2>/dev/null || echo 0)"
    [ "${left:-0}" = 0 ] && break
    [ $((SECONDS - start)) -gt 3600 ] && { echo "   the index did not catch up in an hour" >&2; break; }
    sleep 5
  done
  log "postfach's text index caught up $((SECONDS - start)) s after the fill"
}

for scenario in $SCENARIOS; do
  runs=$RUNS
  # Big mailboxes repeat each operation inside one run; one run per server is enough. A fill
  # is done once (a second run would find every INBOX full).
  case "$scenario" in big-mailbox|fill) runs=1 ;; esac
  for run in $(seq 1 "$runs"); do
    # Alternate the order so drift on a shared machine does not favour one server.
    if [ $((run % 2)) -eq 1 ]; then order="postfach dovecot"; else order="dovecot postfach"; fi
    for server in $order; do
      if [ "$scenario" = idle ]; then
        # A fresh process for each memory measurement: what earlier runs left in the
        # allocators (of either server) is history, not the cost of an idle connection.
        if [ "$server" = postfach ]; then stop_postfach; start_postfach; else stop_dovecot; start_dovecot; fi
      fi
      bench "$server" "$scenario" "$run"
      if [ "$scenario" = fill ] && [ "$server" = postfach ]; then wait_for_index; fi
    done
  done
done

# --- Table ----------------------------------------------------------------------------------
shopt -s nullglob
a=("$OUT"/postfach-*.json)
b=("$OUT"/dovecot-*.json)
if [ ${#a[@]} -eq 0 ] || [ ${#b[@]} -eq 0 ]; then
  echo "no results to compare" >&2
  exit 1
fi
{
  echo "# Postfach vs Dovecot $(dovecot --version | cut -d' ' -f1), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "## Headline figures"
  echo
  "$BENCH" compare --headline --a-name postfach --b-name dovecot --a "${a[@]}" --b "${b[@]}"
  echo
  echo "## All figures"
  echo
  "$BENCH" compare --a-name postfach --b-name dovecot --a "${a[@]}" --b "${b[@]}"
} >"$OUT/table.md"
sed -n '1,/^## All figures/p' "$OUT/table.md" | sed '$d'
echo "full table: $OUT/table.md" >&2
echo "results: $OUT" >&2
