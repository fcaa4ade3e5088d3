//! Measures the heap a data tree holds per znode, with a counting global allocator.
//!
//! The target is 100k znodes in well under 50 MiB for the whole server. This test builds 100k
//! small znodes (100 parents of 1000 sequential-style children, 16 bytes of data each, one shared
//! ACL) through `DataTree::apply`, and bounds the live heap per node. Run with `--nocapture` to
//! see the numbers.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use ensemble::core::ids::{SessionId, Zxid};
use ensemble::core::tree::DataTree;
use ensemble::core::txn::{Txn, TxnOp};
use ensemble::wire::types::Acl;

/// Live bytes as requested, and as glibc malloc would round them (16-byte chunks, 8-byte
/// header, 32-byte minimum), which is closer to the resident cost.
struct Counting;

static REQUESTED: AtomicUsize = AtomicUsize::new(0);
static CHUNKED: AtomicUsize = AtomicUsize::new(0);

fn chunk(size: usize) -> usize {
    ((size + 8 + 15) & !15).max(32)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        REQUESTED.fetch_add(layout.size(), Ordering::Relaxed);
        CHUNKED.fetch_add(chunk(layout.size()), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        REQUESTED.fetch_sub(layout.size(), Ordering::Relaxed);
        CHUNKED.fetch_sub(chunk(layout.size()), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const PARENTS: usize = 100;
const CHILDREN: usize = 1000;

#[test]
fn hundred_thousand_znodes_fit_the_budget() {
    let before = (REQUESTED.load(Ordering::Relaxed), CHUNKED.load(Ordering::Relaxed));
    let mut tree = DataTree::new();
    let mut events = Vec::new();
    let mut counter = 0u32;
    let mut apply = |tree: &mut DataTree, path: String, data: Bytes| {
        counter += 1;
        let op = TxnOp::Create {
            path,
            data: Some(data),
            acl: Acl::open_unsafe().into(),
            ephemeral_owner: 0,
        };
        let txn =
            Txn { zxid: Zxid::new(1, counter), session: SessionId(1), cxid: 0, time_ms: 0, op };
        events.clear();
        tree.apply(&txn, &mut events);
    };
    for p in 0..PARENTS {
        apply(&mut tree, format!("/app{p:03}"), Bytes::new());
        for c in 0..CHILDREN {
            let data = Bytes::copy_from_slice(format!("value-{c:010}").as_bytes());
            apply(&mut tree, format!("/app{p:03}/item-{c:010}"), data);
        }
    }
    drop(events);
    let nodes = tree.node_count();
    assert_eq!(nodes, 4 + PARENTS + PARENTS * CHILDREN);
    let requested = REQUESTED.load(Ordering::Relaxed) - before.0;
    let chunked = CHUNKED.load(Ordering::Relaxed) - before.1;
    let (per_node, per_node_chunked) = (requested / nodes, chunked / nodes);
    println!(
        "{nodes} znodes: {:.1} MiB requested ({per_node} B/node), ~{:.1} MiB with malloc \
         overhead ({per_node_chunked} B/node)",
        requested as f64 / (1 << 20) as f64,
        chunked as f64 / (1 << 20) as f64,
    );
    // About 310 B/node today; the bound leaves room but catches a layout regression.
    assert!(per_node_chunked < 360, "{per_node_chunked} B/node");
    assert!(chunked < 40 << 20, "{chunked} bytes for {nodes} znodes");

    // Reading data shares it (no copy); the first clone of each node's `Bytes` moves it to a
    // shared refcount, a small one-time allocation.
    let before_reads = CHUNKED.load(Ordering::Relaxed);
    for p in 0..PARENTS {
        for c in 0..CHILDREN {
            let (data, _) = tree.data(&format!("/app{p:03}/item-{c:010}")).expect("created");
            assert_eq!(data.map(|d| d.len()), Some(16));
        }
    }
    let after_reads = (CHUNKED.load(Ordering::Relaxed) - before_reads) / (PARENTS * CHILDREN);
    println!("after one read of each: +{after_reads} B/node");
    assert!(after_reads <= 32, "{after_reads} B/node added by reads");
}
