#!/usr/bin/env bash
# Idle cost at scale (issue 16, item 5): server memory per IDLE connection at 1,000 and 10,000
# connections, cleartext and implicit TLS, and the push fan-out: one APPEND to the first
# account's INBOX, timed until each of its IDLE sessions has read the EXISTS, with every other
# connection still open. A fresh release server for each run (so each measures its own
# connections, not an earlier run's allocator history); memory from /proc (PSS of the process).
#
#   bench/idle-scale.sh [--no-build] [--counts "1000 10000"] [--transports "plain tls"]
#
# No LMTP, ManageSieve or web listener, so the run does not collide with another server on the
# machine. Binaries from $CARGO_TARGET_DIR/release (default target/release), e.g. a copy of an
# earlier build to compare with.
#
# Needs a file-descriptor limit above the largest count for this shell (the script raises its
# soft limit to the hard one). Results: one line per run, JSON in $WORK (default
# /tmp/postfach-idle-scale). Accounts: 250 (bench1..bench250), so 10,000 connections stay
# within the per-account limit, which is raised to 100; the first account's 40 sessions at
# 10,000 connections (4 at 1,000) are the ones the fan-out is timed on.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=1
COUNTS="1000 10000"
TRANSPORTS="plain tls"
USERS=250
PASSWORD=benchpass
WORK="${WORK:-/tmp/postfach-idle-scale}"
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --counts) COUNTS="$2"; shift ;;
    --transports) TRANSPORTS="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
TARGET="${CARGO_TARGET_DIR:-target}"
if [ "$BUILD" = 1 ]; then
  cargo build --release -p postfach -p postfach-bench
fi
POSTFACH="$TARGET/release/postfach"
BENCH="$TARGET/release/postfach-bench"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "file descriptors: $(ulimit -n)"

mkdir -p "$WORK"
CONF="$WORK/postfach.toml"
cat >"$CONF" <<EOF
data_dir = "$WORK/data"
[imap]
listen = ["127.0.0.1:0"]
listen_tls = ["127.0.0.1:0"]
allow_plaintext_auth = true
max_connections = 30000
max_connections_per_account = 100
[managesieve]
listen = []
[lmtp]
listen = []
[web]
listen = []
[log]
level = "warn"
EOF
existing="$("$POSTFACH" user list --config "$CONF" 2>/dev/null || true)"
for n in $(seq 1 "$USERS"); do
  if ! grep -qx "bench$n" <<<"$existing"; then
    printf '%s\n' "$PASSWORD" | "$POSTFACH" user add "bench$n" --password-stdin --config "$CONF" >/dev/null 2>&1
  fi
done

for count in $COUNTS; do
  for transport in $TRANSPORTS; do
    : >"$WORK/stdout"
    "$POSTFACH" serve --config "$CONF" >"$WORK/stdout" 2>"$WORK/stderr" &
    pid=$!
    for _ in $(seq 1 100); do
      grep -q "listening imaps" "$WORK/stdout" 2>/dev/null && break
      sleep 0.1
    done
    plain_port="$(sed -n 's/^postfach: listening imap 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/stdout")"
    tls_port="$(sed -n 's/^postfach: listening imaps 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/stdout")"
    args=(--port "$plain_port")
    [ "$transport" = tls ] && args=(--port "$tls_port" --tls)
    out="$WORK/idle-$count-$transport.json"
    "$BENCH" "${args[@]}" --users "$USERS" --password "$PASSWORD" --label postfach --quiet \
      --json "$out" idle --clients "$count" --parallel 64 --server-pid "$pid" --fanout >/dev/null
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    python3 - "$out" "$count" "$transport" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
m = {x["key"]: x["value"] for x in report["figures"]}
def f(key, fmt="{:.1f}"):
    v = m.get(key)
    return "-" if v is None else fmt.format(v)
print(f"{sys.argv[2]:>6} {sys.argv[3]:<5} connections={f('idle.connections', '{:.0f}')} "
      f"failures={f('idle.setup_failures', '{:.0f}')} pss/conn={f('idle.pss_kib_per_conn')} KiB "
      f"total={f('idle.pss_mib_total')} MiB fanout: sessions={f('idle.fanout_sessions', '{:.0f}')} "
      f"missed={f('idle.fanout_missed', '{:.0f}')} p50={f('idle.fanout_ms_p50')} ms max={f('idle.fanout_ms_max')} ms")
PY
  done
done
