#!/usr/bin/env bash
# The throughput cost of quorum TLS: a 3-member Ensemble on 127.0.0.1 started twice, once with
# plain quorum links and once with `sslQuorum=true` (certificates from a throwaway openssl CA,
# verified both ways), each loaded with `ensemble bench load` on the plain client ports in
# interleaved rounds (setData: every write crosses the quorum links twice). Prints ops/s per
# round and the TLS/plain ratios. fsync on, as in production.
#
#   scripts/bench-quorum-tls.sh [rounds (3)] [seconds per round (8)] [clients (32)]
#
# ENSEMBLE_BIN (default target/release/ensemble). The machine's load moves absolute figures a
# lot: read the ratios.
set -Eeuo pipefail
rounds="${1:-3}"
seconds="${2:-8}"
clients="${3:-32}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${ENSEMBLE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/ensemble}"
[[ -x "$bin" ]] || { echo "build it first: cargo build --release" >&2; exit 1; }
command -v openssl >/dev/null || { echo "needs the openssl CLI" >&2; exit 1; }

work="$(mktemp -d /tmp/bench-quorum-tls.XXXXXX)"
declare -a pids=()
stop_all() {
  for pid in "${pids[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

c="$work/tls"
source "$root/scripts/test-ca.sh"
test_ca "$c" "/CN=bench CA"
for n in 1 2 3; do test_leaf "$c" "zk$n" "/CN=zk$n"; done

base=$((22000 + $$ % 300 * 20))
port() { echo $((base + 10 * $1 + $2)); } # member, 0 client / 1 quorum / 2 election
servers=""
for n in 1 2 3; do servers+="server.$n=127.0.0.1:$(port "$n" 1):$(port "$n" 2)"$'\n'; done
clients_at="127.0.0.1:$(port 1 0),127.0.0.1:$(port 2 0),127.0.0.1:$(port 3 0)"

# Starts the three members, plain (`plain`) or with quorum TLS (`tls`), on fresh data.
start() {
  local mode="$1"
  for n in 1 2 3; do
    local m="$work/$mode/m$n"
    rm -rf "$m" && mkdir -p "$m/data"
    echo "$n" >"$m/data/myid"
    {
      printf 'tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%s\n' \
        "$m/data" "$(port "$n" 0)"
      printf '4lw.commands.whitelist=*\n%s' "$servers"
      if [[ $mode == tls ]]; then
        printf 'sslQuorum=true\nssl.quorum.keyStore.location=%s\nssl.quorum.trustStore.location=%s\n' \
          "$c/zk$n.pem" "$c/ca.pem"
      fi
    } >"$m/zoo.cfg"
    env -u SERVER_JVMFLAGS -u JVMFLAGS RUST_LOG=info "$bin" server --config "$m/zoo.cfg" \
      >"$m/server.log" 2>&1 &
    pids+=($!)
  done
  # Serving: one leader and two followers.
  for _ in $(seq 1 600); do
    local modes=""
    for n in 1 2 3; do
      modes+="$( (exec 3<>/dev/tcp/127.0.0.1/"$(port "$n" 0)" && printf srvr >&3 && cat <&3) 2>/dev/null \
        | sed -n 's/^Mode: //p')"
    done
    [[ $modes == *leader* && $(grep -o follower <<<"$modes" | wc -l) == 2 ]] && return 0
    sleep 0.1
  done
  echo "the $mode ensemble did not form; logs in $work/$mode" >&2
  trap - EXIT
  exit 1
}

load() { # prints ops/s
  "$bin" bench load --servers "$clients_at" --clients "$clients" --op setdata \
    --duration "$seconds" 2>/dev/null | sed -n 's/.* \([0-9][0-9]*\) ops\/s.*/\1/p' | head -1
}

echo "uptime before: $(uptime)"
printf '%-6s %12s %12s %7s\n' round plain TLS ratio
for r in $(seq 1 "$rounds"); do
  start plain
  plain="$(load)"
  stop_all
  start tls
  tls="$(load)"
  # Every quorum link of the TLS run was TLS.
  if grep -h "peer link up" "$work"/tls/m*/server.log | grep -q "tls=false" ||
    ! grep -qh "peer link up.*tls=true" "$work"/tls/m*/server.log; then
    echo "the tls run's quorum links were not all TLS" >&2
    exit 1
  fi
  stop_all
  printf '%-6s %12s %12s %7s\n' "$r" "$plain" "$tls" \
    "$(awk -v a="$plain" -v b="$tls" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }')"
done
echo "uptime after: $(uptime)"
