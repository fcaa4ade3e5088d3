#!/usr/bin/env bash
# tls-check: real clients over client TLS (issue #12), with certificates made here by openssl
# (a CA, a server certificate, one client certificate per client; never committed):
#   - kazoo (Python) on the secure port with PEM files: x509 ACL written and read over TLS,
#     refused to a plain connection;
#   - Apache ZooKeeper's zkCli (Netty, PKCS12 key and trust stores) on the plain client port with
#     client.portUnification=true: whoami reports the certificate's x509 id;
#   - a plain-text client on the secure port: closed, one log line, the server serves on.
#
#   .ci/tls-check.sh        # ENSEMBLE_BIN (default target/debug/ensemble)
set -Eeuo pipefail
trap 'echo "tls-check: failed at line $LINENO (exit $?)" >&2' ERR
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ensemble_bin="${ENSEMBLE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/ensemble}"
if ! command -v openssl >/dev/null && [[ $(id -u) == 0 ]]; then
  apt-get install -y -qq openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }
fi
for tool in openssl keytool java python3 timeout; do
  command -v "$tool" >/dev/null || { echo "tls-check: $tool not found" >&2; exit 2; }
done
python3 -c 'import kazoo' 2>/dev/null || python3 -m pip install -q kazoo==2.11.0

work="$(mktemp -d /tmp/tls-check.XXXXXX)"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill -9 "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- certificates
c="$work/certs"
# shellcheck source=../scripts/test-ca.sh
source "$root/scripts/test-ca.sh"
test_ca "$c" "/CN=Ensemble CI CA"
test_leaf "$c" server "/CN=server"   # server.pem: ZooKeeper's PEM key store, key + chain
test_leaf "$c" kazoo "/O=Ensemble/CN=kazoo"
test_leaf "$c" zkcli "/O=Ensemble/CN=zkcli"
openssl pkcs12 -export -in "$c/zkcli.crt" -inkey "$c/zkcli.key" -out "$c/zkcli.p12" \
  -passout pass:clipass -name zkcli
keytool -importcert -noprompt -alias ca -file "$c/ca.pem" -keystore "$c/trust.p12" \
  -storetype PKCS12 -storepass trustpass >/dev/null 2>&1

# --- server
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
secure="$(free_port)"
mkdir -p "$work/data"
cat >"$work/zoo.cfg" <<CFG
tickTime=500
dataDir=$work/data
clientPort=$port
clientPortAddress=127.0.0.1
secureClientPort=$secure
secureClientPortAddress=127.0.0.1
client.portUnification=true
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
ssl.keyStore.location=$c/server.pem
ssl.trustStore.location=$c/ca.pem
4lw.commands.whitelist=*
CFG
"$ensemble_bin" server --config "$work/zoo.cfg" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $secure), 1)" 2>/dev/null && break
  sleep 0.1
done

# --- kazoo over TLS (secure port)
timeout 120 python3 -W ignore "$root/.ci/tls/kazoo_tls.py" "$c" "127.0.0.1:$secure" "127.0.0.1:$port"

# --- a plain-text client on the secure port: closed without an answer
python3 - "$secure" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
body = struct.pack(">iqiq", 0, 0, 30000, 0) + struct.pack(">i", 16) + bytes(16)
s.sendall(struct.pack(">i", len(body)) + body)
s.settimeout(10)
assert s.recv(4096) == b"", "a plain client on the TLS port got an answer"
print("plain client on the secure port: closed without an answer")
PY
grep -q "plain-text client on the TLS-only port" "$work/server.log" ||
  { echo "tls-check: no log line for the plain client" >&2; exit 1; }

# --- zkCli over TLS (Netty, PKCS12 stores) on the unified plain port
cp="/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar"
for jar in netty-buffer netty-codec netty-common netty-handler netty-resolver netty-transport \
  netty-transport-native-epoll netty-transport-native-unix-common slf4j-api slf4j-simple; do
  if [[ -f "/usr/share/java/$jar.jar" ]]; then cp="$cp:/usr/share/java/$jar.jar"; fi
done
zkcli() {
  timeout 60 java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$cp" \
    -Dzookeeper.client.secure=true \
    -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty \
    -Dzookeeper.ssl.keyStore.location="$c/zkcli.p12" -Dzookeeper.ssl.keyStore.password=clipass \
    -Dzookeeper.ssl.trustStore.location="$c/trust.p12" -Dzookeeper.ssl.trustStore.password=trustpass \
    org.apache.zookeeper.ZooKeeperMain -server "127.0.0.1:$port" "$@" 2>&1
}
out="$(zkcli whoami)"
grep -q "^x509: CN=zkcli,O=Ensemble$" <<<"$out" ||
  { echo "tls-check: zkCli whoami over TLS did not show its x509 id:" >&2; echo "$out" >&2; exit 1; }
echo "zkCli over TLS (port unification, PKCS12): whoami shows x509: CN=zkcli,O=Ensemble"
out="$(zkcli get /kazoo-tls || true)"   # zkCli exits non-zero on the refusal
grep -q "Insufficient permission" <<<"$out" ||
  { echo "tls-check: zkCli read kazoo's x509 node:" >&2; echo "$out" >&2; exit 1; }
echo "zkCli: kazoo's x509 node refused to another certificate"

kill -0 "$server_pid" || { echo "tls-check: server died" >&2; cat "$work/server.log" >&2; exit 1; }
echo "tls-check: 4 passed, 0 failed"
