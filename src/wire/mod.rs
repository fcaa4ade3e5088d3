//! The ZooKeeper client wire protocol: jute encoding, typed records, framing.
//!
//! Pure functions over bytes. Decoders never panic on any input: they return `DecodeError`.

pub mod codec;
pub mod frame;
pub mod jute;
pub mod proto;
pub mod types;

pub use codec::*;
pub use proto::*;
pub use types::*;
