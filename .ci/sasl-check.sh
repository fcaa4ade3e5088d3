#!/usr/bin/env bash
# sasl-check: client SASL DIGEST-MD5 with real clients against one standalone server.
#   kazoo (pure-sasl): creates a sasl:bob node; an anonymous client is refused it; a wrong
#   password is refused; the anonymous client keeps working (.ci/sasl/kazoo_sasl.py).
#   zkCli with a JAAS Client section: creates, reads, getAcl and whoami as bob; with a wrong
#   password it gets AuthFailed.
# The server's JAAS file comes from a java.env beside zoo.cfg (SERVER_JVMFLAGS) and the SASL
# provider from the JVMFLAGS environment variable, as zkServer.sh passes them.
#
#   .ci/sasl-check.sh              # Ensemble: target/debug/ensemble server --config <zoo.cfg>
#   .ci/sasl-check.sh zookeeper    # Apache ZooKeeper from the Debian package (same checks)
set -Eeuo pipefail
trap 'echo "sasl-check: failed at line $LINENO (exit $?)" >&2' ERR

target="${1:-ensemble}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
zkcli="${ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}"
ensemble_bin="${ENSEMBLE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/ensemble}"
zk_classpath="${ZK_CLASSPATH:-/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar}"

python3 -c 'import kazoo' 2>/dev/null || python3 -m pip install -q kazoo==2.11.0
python3 -c 'import puresasl' 2>/dev/null || python3 -m pip install -q pure-sasl==0.6.2

work="$(mktemp -d /tmp/sasl-check.XXXXXX)"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill -9 "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [[ -n "${KEEP:-}" ]]; then echo "sasl-check: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
addr="127.0.0.1:$port"
mkdir -p "$work/conf" "$work/data"
cat >"$work/conf/jaas.conf" <<'EOF'
// The server's DIGEST-MD5 users.
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"
    user_bob="bobsecret";
};
EOF
cat >"$work/client.jaas" <<'EOF'
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="bob"
    password="bobsecret";
};
EOF
sed 's/"bobsecret"/"wrong"/' "$work/client.jaas" >"$work/wrong.jaas"
printf 'tickTime=500\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\n' \
  "$work/data" "$port" >"$work/conf/zoo.cfg"
printf 'SERVER_JVMFLAGS="-Djava.security.auth.login.config=%s"\n' "$work/conf/jaas.conf" \
  >"$work/conf/java.env"
provider="-Dzookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"

case "$target" in
  ensemble)
    [[ -x "$ensemble_bin" ]] || { echo "sasl-check: build first: $ensemble_bin missing" >&2; exit 2; }
    JVMFLAGS="$provider" "$ensemble_bin" server --config "$work/conf/zoo.cfg" >"$work/server.log" 2>&1 &
    ;;
  zookeeper)
    java -Xmx256m -XX:+UseSerialGC -Dzookeeper.admin.enableServer=false \
      -Djava.security.auth.login.config="$work/conf/jaas.conf" "$provider" -cp "$zk_classpath" \
      org.apache.zookeeper.server.ZooKeeperServerMain "$work/conf/zoo.cfg" >"$work/server.log" 2>&1 &
    ;;
  *) echo "usage: $0 [ensemble|zookeeper]" >&2; exit 2 ;;
esac
server_pid=$!
for _ in $(seq 200); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done

echo "-- kazoo"
timeout 120 python3 -W ignore "$root/.ci/sasl/kazoo_sasl.py" "$addr"

echo "-- zkCli"
export CLIENT_JVMFLAGS="-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"
cli() {
  local jaas="$1"
  shift
  CLIENT_JVMFLAGS="$CLIENT_JVMFLAGS -Djava.security.auth.login.config=$jaas" \
    timeout 40 "$zkcli" -server "$addr" "$@" 2>&1 | grep -v 'SLF4J\|^$' || true
}
expect() {
  local what="$1" output="$2"
  grep -qF -- "$what" <<<"$output" || {
    echo "sasl-check: expected '$what' in:" >&2
    echo "$output" >&2
    exit 1
  }
}
# (The SaslAuthenticated/AuthFailed events print from another thread, maybe after the command's
# own output and exit, so the checks below rely on the commands' results only.)
expect "Created /zkcli-sasl" "$(cli "$work/client.jaas" create /zkcli-sasl from-zkcli sasl:bob:cdrwa)"
expect "from-zkcli" "$(cli "$work/client.jaas" get /zkcli-sasl)"
expect "'sasl,'bob" "$(cli "$work/client.jaas" getAcl /zkcli-sasl)"
expect "sasl: bob" "$(cli "$work/client.jaas" whoami)"
out="$(cli "$work/wrong.jaas" get /zkcli-sasl)"
expect "AuthFailed for /zkcli-sasl" "$out"
echo "zkCli: authenticated as bob, and a wrong password got AuthFailed"

if [[ "$target" == ensemble ]]; then
  log="$(sed 's/\x1b\[[0-9;]*m//g' "$work/server.log")"
  expect "system property java.security.auth.login.config=$work/conf/jaas.conf from SERVER_JVMFLAGS in java.env line 1" "$log"
  expect "failed to SASL authenticate: DIGEST-MD5: mismatched response for user 'bob'" "$log"
  expect "adding SASL authorization for authorizationID: bob" "$log"
  echo "server log: the JAAS origin, the success and the refusal are logged"
fi
kill -0 "$server_pid" 2>/dev/null || { echo "sasl-check: the server died" >&2; exit 1; }
echo "sasl-check ($target): ok"
