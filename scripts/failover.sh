#!/usr/bin/env bash
# Failover time on loopback: SIGKILL the leader of a 3-member ensemble, measure the time to the
# first successful write after it. Runs Ensemble and then Apache ZooKeeper (Debian's `zookeeper`
# package, `QuorumPeerMain`) with the same tickTime/initLimit/syncLimit and the same client.
#
#   scripts/failover.sh [runs] [tickTime] [initLimit] [syncLimit]
#
# Set ZK_CLASSPATH to point at another ZooKeeper; SKIP_ZOOKEEPER=1 measures Ensemble only.
# CLIENT=zookeeper-client writes through the `zookeeper-client` crate instead of the bench's raw
# client (examples/failover_zk_client.rs, release build): one session kept across reconnects,
# the crate's own member rotation and backoff, i.e. what an application sees.
set -euo pipefail

runs=${1:-7}
tick=${2:-200}
init=${3:-10}
sync=${4:-5}
zk_classpath=${ZK_CLASSPATH:-/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar}

cd "$(dirname "$0")/.."
if [[ "${CLIENT:-raw}" == zookeeper-client ]]; then
    cargo build --quiet --release --bin ensemble --example failover_zk_client
    example=target/release/examples/failover_zk_client
    RUST_LOG=warn,zookeeper_client=error "$example" ensemble "$runs" "$tick" "$init" "$sync"
    if [[ "${SKIP_ZOOKEEPER:-0}" != 1 ]]; then
        RUST_LOG=warn,zookeeper_client=error "$example" zookeeper "$runs" "$tick" "$init" "$sync"
    fi
    exit 0
fi
cargo build --quiet --bin ensemble
bin=target/debug/ensemble
common=(--runs "$runs" --tick-time "$tick" --init-limit "$init" --sync-limit "$sync")

RUST_LOG=warn "$bin" bench failover --target ensemble "${common[@]}"
if [[ "${SKIP_ZOOKEEPER:-0}" != 1 ]]; then
    RUST_LOG=warn "$bin" bench failover --target zookeeper --zk-classpath "$zk_classpath" "${common[@]}"
fi
