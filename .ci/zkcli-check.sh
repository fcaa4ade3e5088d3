#!/usr/bin/env bash
# zkcli-check: drives a scripted session of Apache ZooKeeper's own CLI (zkCli.sh) against a
# server and diffs the normalised transcript with .ci/zkcli/expected.txt, which was generated
# against Apache ZooKeeper itself (the reference).
#
#   .ci/zkcli-check.sh              # Ensemble: target/debug/ensemble server --config <zoo.cfg>
#   .ci/zkcli-check.sh zookeeper    # Apache ZooKeeper from the Debian package
#   .ci/zkcli-check.sh zookeeper --update   # regenerate expected.txt from the reference
#
# Environment: ENSEMBLE_BIN (default target/debug/ensemble), ZKCLI (default
# /usr/share/zookeeper/bin/zkCli.sh), ZK_CLASSPATH (jars of the reference server).
#
# Volatile fields are normalised: timestamps, non-zero hex (zxids, session ids), JVM/SLF4J
# noise and connection-state events. The order of lines inside `whoami` output is not
# significant (the reference keeps auth ids in a hash set) and is sorted.
set -Eeuo pipefail
trap 'echo "zkcli-check: failed at line $LINENO (exit $?)" >&2' ERR

target="${1:-ensemble}"
update="${2:-}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
expected="$root/.ci/zkcli/expected.txt"
zkcli="${ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}"
ensemble_bin="${ENSEMBLE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/ensemble}"
zk_classpath="${ZK_CLASSPATH:-/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar}"

for tool in java timeout mkfifo diff; do
  command -v "$tool" >/dev/null || { echo "zkcli-check: $tool not found" >&2; exit 2; }
done
[[ -x "$zkcli" ]] || { echo "zkcli-check: $zkcli not found (apt-get install zookeeper)" >&2; exit 2; }

work="$(mktemp -d /tmp/zkcli-check.XXXXXX)"
server_pid=""
a_pid=""
cleanup() {
  exec 3>&- 2>/dev/null || true
  [[ -n "$a_pid" ]] && kill "$a_pid" 2>/dev/null || true
  [[ -n "$server_pid" ]] && kill -9 "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || shuf -i 20000-60000 -n 1)"
addr="127.0.0.1:$port"
mkdir -p "$work/data"
cat >"$work/zoo.cfg" <<EOF
tickTime=500
dataDir=$work/data
clientPort=$port
clientPortAddress=127.0.0.1
4lw.commands.whitelist=*
extendedTypesEnabled=true
EOF

case "$target" in
  ensemble)
    [[ -x "$ensemble_bin" ]] || { echo "zkcli-check: build first: $ensemble_bin missing" >&2; exit 2; }
    "$ensemble_bin" server --config "$work/zoo.cfg" >"$work/server.log" 2>&1 &
    ;;
  zookeeper)
    java -Xmx256m -XX:+UseSerialGC -Dzookeeper.admin.enableServer=false -cp "$zk_classpath" \
      org.apache.zookeeper.server.ZooKeeperServerMain "$work/zoo.cfg" >"$work/server.log" 2>&1 &
    ;;
  *) echo "usage: $0 [ensemble|zookeeper] [--update]" >&2; exit 2 ;;
esac
server_pid=$!

fourlw() {
  timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && printf '%s' '$1' >&3 && cat <&3" 2>/dev/null || true
}
for _ in $(seq 1 200); do
  [[ "$(fourlw ruok)" == "imok" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "zkcli-check: server exited" >&2; cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
[[ "$(fourlw ruok)" == "imok" ]] || { echo "zkcli-check: server not ready" >&2; cat "$work/server.log" >&2; exit 1; }

export CLIENT_JVMFLAGS="${CLIENT_JVMFLAGS:--Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
cli() { timeout 30 "$zkcli" -server "$addr" "$@"; }

# Waits (bounded) until file $1 contains the fixed string $2.
wait_for() {
  for _ in $(seq 1 300); do
    grep -qF -- "$2" "$1" && return 0
    sleep 0.05
  done
  echo "zkcli-check: timed out waiting for '$2' in $1" >&2
  cat "$1" >&2
  exit 1
}

# Session A reads commands from a FIFO so a second session can act in the middle.
mkfifo "$work/a.in"
timeout 50 "$zkcli" -server "$addr" <"$work/a.in" >"$work/a.out" 2>&1 &
a_pid=$!
exec 3>"$work/a.in"
send() { printf '%s\n' "$@" >&3; }
# In non-interactive mode zkCli runs commands without waiting for the session.
wait_for "$work/a.out" "type:None path:null"

send "create /app hello" \
  "create /app/child data" \
  "create -e /app/eph ephemeral" \
  "create -s /app/seq- s" \
  "create -e -s /app/eseq- es" \
  "create /app/child again" \
  "create /missing/child x" \
  "create -e /app/eph/under x" \
  "ls /app" \
  "ls -s /app" \
  "get -s /app" \
  "set /app world" \
  "set -v 1 /app again" \
  "set -v 99 /app nope" \
  "get /app" \
  "stat /app" \
  "stat /missing" \
  "get /missing" \
  "delete /app" \
  "delete -v 5 /app/child" \
  "delete /app/child" \
  "delete /app/child" \
  "ls -R /app" \
  "deleteall /app" \
  "ls /" \
  "create /acl x" \
  "getAcl /acl" \
  "setAcl -v 3 /acl world:anyone:cdrwa" \
  "setAcl -v 0 /acl world:anyone:r" \
  "getAcl /acl" \
  "set /acl y" \
  "addauth digest alice:secret" \
  "create /secure s auth::cdrwa" \
  "getAcl /secure" \
  "sync /" \
  "create -c /cont" \
  "create -t 60000 /ttl" \
  "stat /cont" \
  "stat /ttl" \
  "whoami" \
  "create /w watched-data" \
  "get -w /w"
wait_for "$work/a.out" "watched-data"

# Session B changes the watched node; A must print the NodeDataChanged event.
cli set /w changed >"$work/b.out" 2>&1
wait_for "$work/a.out" "type:NodeDataChanged path:/w"

send "get /w" \
  "create -e /eph2 e" \
  "getEphemerals /" \
  "getAllChildrenNumber /" \
  "quit"
exec 3>&-
wait "$a_pid" || true
a_pid=""

# Session C: a fresh, unauthenticated session after A closed (its ephemeral is gone).
mkfifo "$work/c.in"
timeout 30 "$zkcli" -server "$addr" <"$work/c.in" >"$work/c.out" 2>&1 &
c_pid=$!
exec 4>"$work/c.in"
wait_for "$work/c.out" "type:None path:null"
printf '%s\n' "ls /" "get /secure" "getAcl /secure" "get /w" "quit" >&4
exec 4>&-
wait "$c_pid" || true

normalise() {
  { grep -vE '^(SLF4J: |Connecting to |Welcome to ZooKeeper!|JLine support is|WATCHER::$|$)' || true; } |
    { grep -vE '^WatchedEvent state:(SyncConnected|Closed) type:None path:null$' || true; } |
    sed -E -e 's/^(ctime|mtime) = .*/\1 = <date>/' -e 's/0x0*[1-9a-f][0-9a-f]*/0xN/g' |
    awk '/^[a-z0-9]+: /{ids[n++]=$0; next}
         { if (n) { for (i=0;i<n;i++) print ids[i] | "sort"; close("sort"); n=0 } print }
         END { if (n) { for (i=0;i<n;i++) print ids[i] | "sort"; close("sort") } }'
}
{
  echo "### session A"
  normalise <"$work/a.out"
  echo "### session B: set /w changed"
  normalise <"$work/b.out"
  echo "### session C"
  normalise <"$work/c.out"
} >"$work/actual.txt"

if [[ "$update" == "--update" ]]; then
  [[ "$target" == "zookeeper" ]] || { echo "zkcli-check: --update only from the reference" >&2; exit 2; }
  mkdir -p "$(dirname "$expected")"
  cp "$work/actual.txt" "$expected"
  echo "zkcli-check: wrote $expected"
  exit 0
fi

if diff -u "$expected" "$work/actual.txt"; then
  echo "zkcli-check: $target matches the zkCli transcript of Apache ZooKeeper"
else
  echo "zkcli-check: $target differs from Apache ZooKeeper (diff above: - expected, + got)" >&2
  exit 1
fi
