//! Client compatibility tests: real TCP on 127.0.0.1 against a server subprocess.
//!
//! Every test here must also pass against Apache ZooKeeper (the reference):
//! `ENSEMBLE_TEST_TARGET=zookeeper cargo test --test clients`. Tests that only make sense for
//! Ensemble say so and return early under that target. See `harness.rs` for the target
//! selection and `raw.rs` for the hand-written wire client.
//!
//! The tests use two clients: the `zookeeper-client` crate (what applications use) and the raw
//! client (exact frames, invalid input, ordering on the wire).

#![cfg(not(madsim))]

mod harness;
mod raw;

mod acl;
mod crud;
mod durability;
mod error_replies;
mod fourlw;
mod limits;
mod multi;
mod reaping;
mod sasl;
mod sessions;
mod watches;
mod wire;

use zookeeper_client as zk;

/// Persistent node, `world:anyone` ALL.
pub const PERSISTENT: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
/// Ephemeral node, `world:anyone` ALL.
pub const EPHEMERAL: zk::CreateOptions<'static> =
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
/// Persistent sequential node, `world:anyone` ALL.
pub const PERSISTENT_SEQUENTIAL: zk::CreateOptions<'static> =
    zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
/// Ephemeral sequential node, `world:anyone` ALL.
pub const EPHEMERAL_SEQUENTIAL: zk::CreateOptions<'static> =
    zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
/// Container node, `world:anyone` ALL.
pub const CONTAINER: zk::CreateOptions<'static> =
    zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());

/// How `zookeeper-client` reports a server's `-8 BadArguments` (local validation failures
/// carry other messages).
pub const SERVER_BAD_ARGUMENTS: zk::Error = zk::Error::BadArguments(&"server error");

/// Sorted copy, for comparing unordered child lists.
pub fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

/// `<user>:<base64(sha1("<user>:<password>"))>`, the digest ACL id of `user:password`.
pub fn digest_id(user_password: &str) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let user = user_password.split(':').next().expect("user part");
    let hash = sha1::Sha1::digest(user_password.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}
