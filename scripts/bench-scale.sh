#!/usr/bin/env bash
# Ensemble vs Apache ZooKeeper with many znodes (issue #10), one after the other in one run:
# fill rate and RSS, setData latency per second (16 sync clients on 1,000 of the znodes) with
# the snapshots the servers log, restart time to the first read, idle-session CPU; then a table
# of the ratios Ensemble/ZooKeeper beside the goals. See docs/benchmarks.md, "Scale".
#
#   scripts/bench-scale.sh                                # 1M znodes, standalone, ≈ 8 minutes
#   scripts/bench-scale.sh --members 3                    # 3-member ensembles
#   scripts/bench-scale.sh --znodes 20000 --duration 5s   # a quick smoke run
#   scripts/bench-scale.sh --scenario setdata             # fill|setdata|restart|sessions|all
#
# Release build. Set ZK_CLASSPATH to point at another ZooKeeper (default: Debian's `zookeeper`
# package). The machine's load average is printed before and after: other work on the
# machine skews the figures.
set -euo pipefail

zk_classpath=${ZK_CLASSPATH:-/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar}

cd "$(dirname "$0")/.."
cargo build --quiet --release --bin ensemble
bin=${CARGO_TARGET_DIR:-target}/release/ensemble

echo "uptime before: $(uptime)"
RUST_LOG=warn "$bin" bench scale --zk-classpath "$zk_classpath" "$@"
echo "uptime after: $(uptime)"
