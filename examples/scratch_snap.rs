use bytes::Bytes;
use ensemble::core::ids::{SessionId, Zxid};
use ensemble::core::snapshot::{self, SnapshotImage};
use ensemble::core::tree::DataTree;
use ensemble::core::txn::{Txn, TxnOp};
use ensemble::wire::types::Acl;
use std::time::Instant;

fn main() {
    let n: u32 = std::env::args().nth(1).map(|a| a.parse().unwrap()).unwrap_or(1_000_000);
    let mut tree = DataTree::new();
    let mut ev = Vec::new();
    let mut z = 0u32;
    let t = Instant::now();
    let parents = (n / 1000).max(1);
    for p in 0..parents {
        z += 1;
        let op = TxnOp::Create {
            path: format!("/p{p:04}"),
            data: None,
            acl: Acl::open_unsafe(),
            ephemeral_owner: 0,
        };
        tree.apply(
            &Txn { zxid: Zxid::new(1, z), session: SessionId(1), cxid: 0, time_ms: 0, op },
            &mut ev,
        );
        ev.clear();
        for c in 0..(n / parents) {
            z += 1;
            let op = TxnOp::Create {
                path: format!("/p{p:04}/n{c:07}"),
                data: Some(Bytes::from(vec![7u8; 100])),
                acl: Acl::open_unsafe(),
                ephemeral_owner: 0,
            };
            tree.apply(
                &Txn { zxid: Zxid::new(1, z), session: SessionId(1), cxid: 0, time_ms: 0, op },
                &mut ev,
            );
            ev.clear();
        }
    }
    println!(
        "fill {} nodes: {:?} ({:.2} us/node)",
        tree.node_count(),
        t.elapsed(),
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    for l in status.lines().filter(|l| l.starts_with("VmRSS")) {
        println!("after fill {l}");
    }
    let t = Instant::now();
    let image = SnapshotImage::new(tree.zxid_applied(), &tree, vec![]);
    println!("image: {:?}", t.elapsed());
    let t = Instant::now();
    let body = image.encode();
    println!("encode: {:?} {} bytes", t.elapsed(), body.len());
    drop(image);
    let t = Instant::now();
    let restored = snapshot::decode(&body).unwrap();
    println!("decode: {:?} {} nodes", t.elapsed(), restored.tree.node_count());
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    for l in status.lines().filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM")) {
        println!("{l}");
    }
}
