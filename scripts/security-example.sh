#!/usr/bin/env bash
# security-example: runs docs/operations.md's "Complete example" (client TLS, client SASL,
# quorum TLS, quorum SASL on 3 members) as written, as three processes on 127.0.0.1.
#
# The zoo.cfg, jaas.conf and java.env are the code blocks of that section, taken from the doc
# itself; only host names, ports (three members share one host) and /etc, /var paths are
# replaced. Certificates come from a throwaway CA made here by openssl. kazoo (with pure-sasl)
# then connects over TLS with DIGEST-MD5, writes a znode only bob may read, the leader is
# killed, and the survivors are read over TLS + SASL.
#
#   scripts/security-example.sh     # ENSEMBLE_BIN (default target/debug/ensemble)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
ensemble_bin="${ENSEMBLE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/ensemble}"
[[ -x $ensemble_bin ]] || { echo "no $ensemble_bin: cargo build first" >&2; exit 2; }
python3 -c 'import kazoo, puresasl' || { echo "needs kazoo and pure-sasl" >&2; exit 2; }

work="$(mktemp -d -t ensemble-security-example-XXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- the three code blocks of "### Complete example" (properties, JAAS, sh), in order
python3 - "$root/docs/operations.md" "$work" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
section = text.split("### Complete example", 1)[1].split("\n## ", 1)[0]
blocks = re.findall(r"```[a-z]*\n(.*?)```", section, re.S)
for name, block in zip(["zoo.cfg", "jaas.conf", "java.env"], blocks[:3]):
    open(f"{sys.argv[2]}/doc-{name}", "w").write(block)
EOF

# --- certificates: one per member (key + chain, ZooKeeper's PEM key store), one for kazoo
c="$work/tls"
source "$root/scripts/test-ca.sh"
test_ca "$c" "/CN=Example CA"
for n in 1 2 3; do test_leaf "$c" "zk$n" "/CN=zk$n"; done
test_leaf "$c" client "/CN=client"

# --- member n: the doc's files with this host's ports and paths
base=$((21000 + $$ % 400 * 20))
port() { echo $((base + 10 * $1 + $2)); } # member, 0 client / 1 quorum / 2 election / 3 secure
sed "s|/etc/zookeeper/jaas.conf|$work/jaas.conf|g" "$work/doc-java.env" >"$work/java.env"
cp "$work/doc-jaas.conf" "$work/jaas.conf"
for n in 1 2 3; do
  m="$work/m$n"
  mkdir -p "$m/data"
  echo "$n" >"$m/data/myid"
  sed -e "s|^dataDir=/var/lib/zookeeper|dataDir=$m/data|" \
    -e "s|^clientPort=2181|clientPort=$(port $n 0)|" \
    -e "s|^secureClientPort=2281|secureClientPort=$(port $n 3)|" \
    -e "s|/etc/zookeeper/tls/zk1.pem|$c/zk$n.pem|" \
    -e "s|/etc/zookeeper/tls/ca.pem|$c/ca.pem|" \
    -e "s|^server.\([123]\)=zk[123].example.com:2888:3888|server.\1=127.0.0.1:PORT\1|" \
    "$work/doc-zoo.cfg" >"$m/zoo.cfg"
  for s in 1 2 3; do sed -i "s|PORT$s\$|$(port $s 1):$(port $s 2)|" "$m/zoo.cfg"; done
  cp "$work/java.env" "$m/java.env"
  if grep -q 'example.com\|/etc/\|/var/\|PORT' "$m/zoo.cfg"; then
    echo "unreplaced value in member $n's zoo.cfg:" >&2; cat "$m/zoo.cfg" >&2; exit 1
  fi
done
start() { # member
  env -u SERVER_JVMFLAGS -u JVMFLAGS RUST_LOG=info \
    "$ensemble_bin" server --config "$work/m$1/zoo.cfg" >>"$work/m$1/server.log" 2>&1 &
  pids[$1]=$!
}
for n in 1 2 3; do start "$n"; done

# --- clients: kazoo over TLS with DIGEST-MD5
python3 - "$work" "$(port 1 0)" "$(port 2 0)" "$(port 3 0)" "$(port 1 3)" "$(port 2 3)" "$(port 3 3)" <<'EOF' &
import socket, sys, time
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl

work, plain, secure = sys.argv[1], sys.argv[2:5], sys.argv[5:8]
tls = dict(use_ssl=True, ca=f"{work}/tls/ca.pem", certfile=f"{work}/tls/client.crt",
           keyfile=f"{work}/tls/client.key")
bob = dict(mechanism="DIGEST-MD5", username="bob", password="bob-secret")

def mode(port):
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as s:
            s.sendall(b"srvr")
            data = b"".join(iter(lambda: s.recv(4096), b"")).decode()
        return next((l[6:] for l in data.splitlines() if l.startswith("Mode: ")), None)
    except OSError:
        return None

def wait_for_leader(members):
    deadline = time.time() + 60
    while time.time() < deadline:
        modes = {m: mode(plain[m]) for m in members}
        if list(modes.values()).count("leader") == 1 and None not in modes.values():
            return next(m for m, v in modes.items() if v == "leader")
        time.sleep(0.1)
    sys.exit(f"no leader among {members}: {modes}")

def client(member, sasl=True):
    zk = KazooClient(hosts=f"127.0.0.1:{secure[member]}", timeout=10,
                     sasl_options=bob if sasl else None, **tls)
    zk.start(timeout=30)
    return zk

leader = wait_for_leader([0, 1, 2])
print(f"formed: leader is member {leader + 1}", flush=True)
zk = client(leader)
zk.create("/example", b"bob's", acl=[make_acl("sasl", "bob", all=True)])
zk.stop()
open(f"{work}/leader", "w").write(str(leader + 1))
while open(f"{work}/leader").read().strip() != "killed":
    time.sleep(0.1)
survivors = [m for m in range(3) if m != leader]
second = wait_for_leader(survivors)
print(f"after the kill: leader is member {second + 1}", flush=True)
for m in survivors:
    zk = client(m)
    zk.sync("/")
    assert zk.get("/example")[0] == b"bob's"
    zk.stop()
    anonymous = client(m, sasl=False)
    try:
        anonymous.get("/example")
        sys.exit("a client without SASL read /example")
    except NoAuthError:
        pass
    anonymous.stop()
print("kazoo over TLS + SASL: ok before and after the leader kill", flush=True)
EOF
checker=$!
deadline=$((SECONDS + 120))
until [[ -s $work/leader ]]; do
  kill -0 "$checker" 2>/dev/null || { wait "$checker"; exit 1; }
  ((SECONDS < deadline)) || { echo "timed out"; exit 1; }
  sleep 0.2
done
leader="$(cat "$work/leader")"
kill "${pids[$leader]}"
echo killed >"$work/leader"
wait "$checker"

for n in 1 2 3; do
  log="$work/m$n/server.log"
  grep -q 'java.env line 1' "$log" || { echo "member $n: no JAAS path from java.env"; exit 1; }
  grep 'peer link up' "$log" | grep -q 'tls=false' && { echo "member $n: a plain quorum link"; exit 1; }
done
grep -q 'peer authenticated with quorum SASL' "$work"/m*/server.log || { echo "no quorum SASL"; exit 1; }
echo "security-example: ok (docs/operations.md, \"Complete example\")"
