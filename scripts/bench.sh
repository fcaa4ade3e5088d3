#!/usr/bin/env bash
# Ensemble vs Apache ZooKeeper on this machine: setData/getData load (64 clients, 100 B),
# RSS per member at 100k znodes, and leader failover, each against a 3-member loopback
# ensemble with fsync on; prints a table of the ratios Ensemble/ZooKeeper.
#
#   scripts/bench.sh [extra `ensemble bench compare` args, e.g. --duration 20s --failover-runs 7]
#   scripts/bench.sh scale [`ensemble bench scale` args]   # the scale benchmark: bench-scale.sh
#
# Release build. Set ZK_CLASSPATH to point at another ZooKeeper (default: Debian's `zookeeper`
# package). Takes about 4 minutes (3 interleaved load rounds, memory, failover). The machine's load average is printed before and after:
# other work on the machine skews the figures, so compare runs taken under similar load.
set -euo pipefail

zk_classpath=${ZK_CLASSPATH:-/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar}

if [[ "${1:-}" == scale ]]; then
    shift
    exec "$(dirname "$0")/bench-scale.sh" "$@"
fi

cd "$(dirname "$0")/.."
cargo build --quiet --release --bin ensemble
bin=${CARGO_TARGET_DIR:-target}/release/ensemble

echo "uptime before: $(uptime)"
RUST_LOG=warn "$bin" bench compare --zk-classpath "$zk_classpath" "$@"
echo "uptime after: $(uptime)"
