#!/usr/bin/env bash
# The throughput cost of client TLS: one standalone Ensemble and one standalone Apache ZooKeeper
# (NettyServerCnxnFactory, the only one that speaks TLS), each with a plain and a secure client
# port, loaded by `ensemble bench load` over plain TCP and over TLS (client certificate, TLS 1.3)
# in interleaved rounds; prints ops/s per round and the TLS/plain ratios. Certificates are made
# here with openssl. fsync on, as in production.
#
#   scripts/bench-tls.sh [rounds (3)] [seconds per round (8)] [clients (32)]
#
# The machine's load moves absolute figures a lot: read the ratios.
set -euo pipefail
rounds=${1:-3}
secs=${2:-8}
clients=${3:-32}
zk_classpath=${ZK_CLASSPATH:-/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar}
for jar in netty-buffer netty-codec netty-common netty-handler netty-resolver netty-transport \
  netty-transport-native-epoll netty-transport-native-unix-common slf4j-api slf4j-simple; do
  if [[ -f "/usr/share/java/$jar.jar" ]]; then zk_classpath="$zk_classpath:/usr/share/java/$jar.jar"; fi
done
cd "$(dirname "$0")/.."
cargo build --quiet --release --bin ensemble
bin=${CARGO_TARGET_DIR:-target}/release/ensemble

work="$(mktemp -d /tmp/bench-tls.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

c="$work/certs"
source scripts/test-ca.sh
test_ca "$c" "/CN=bench CA"
for name in server client; do test_leaf "$c" "$name" "/CN=$name"; done
openssl pkcs12 -export -in "$c/server.crt" -inkey "$c/server.key" -out "$c/server.p12" \
  -passout pass:benchpw -name server
keytool -importcert -noprompt -alias ca -file "$c/ca.pem" -keystore "$c/trust.p12" \
  -storetype PKCS12 -storepass benchpw >/dev/null 2>&1

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # name -> sets plain_<name>, tls_<name>
  local name=$1 plain tls
  plain=$(free_port); tls=$(free_port)
  mkdir -p "$work/$name/data"
  cat >"$work/$name/zoo.cfg" <<CFG
tickTime=2000
dataDir=$work/$name/data
clientPort=$plain
clientPortAddress=127.0.0.1
secureClientPort=$tls
secureClientPortAddress=127.0.0.1
maxClientCnxns=0
ssl.keyStore.location=$c/server.p12
ssl.keyStore.password=benchpw
ssl.trustStore.location=$c/trust.p12
ssl.trustStore.password=benchpw
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
4lw.commands.whitelist=*
CFG
  if [[ $name == ensemble ]]; then
    RUST_LOG=warn "$bin" server --config "$work/$name/zoo.cfg" >"$work/$name/log" 2>&1 &
  else
    java -Dzookeeper.admin.enableServer=false \
      -Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory \
      -cp "$zk_classpath" org.apache.zookeeper.server.ZooKeeperServerMain "$work/$name/zoo.cfg" \
      >"$work/$name/log" 2>&1 &
  fi
  pids+=($!)
  for _ in $(seq 300); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $tls), 1)" 2>/dev/null && break
    sleep 0.1
  done
  eval "plain_$name=$plain; tls_$name=$tls"
}
start ensemble
start zookeeper

load() { # port op [tls] -> ops/s
  local args=(--servers "127.0.0.1:$1" --clients "$clients" --op "$2" --duration "${secs}s" --warmup 2s)
  if [[ ${3:-} == tls ]]; then args+=(--tls-key-store "$c/client.pem" --tls-trust-store "$c/ca.pem"); fi
  RUST_LOG=error "$bin" bench load "${args[@]}" 2>&1 | sed -n 's/.* \([0-9.]*\) ops\/s.*/\1/p' | head -1
}

echo "uptime before: $(uptime)"
printf '%-10s %-8s %5s %12s %12s %7s\n' system op round plain TLS ratio
for op in ${BENCH_OPS:-getdata setdata}; do
  for round in $(seq "$rounds"); do
    for name in ensemble zookeeper; do
      eval "plain=\$plain_$name; tls=\$tls_$name"
      p=$(load "$plain" "$op")
      t=$(load "$tls" "$op" tls)
      printf '%-10s %-8s %5s %12s %12s %7s\n' "$name" "$op" "$round" "$p" "$t" \
        "$(python3 -c "print(f'{$t/$p:.2f}')" 2>/dev/null || echo '?')"
    done
  done
done
echo "uptime after: $(uptime)"
