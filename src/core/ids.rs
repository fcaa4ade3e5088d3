//! Identifiers used throughout the core. Each is a newtype so that a session id can never be
//! passed where a zxid is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A ZooKeeper transaction id: `epoch << 32 | counter`.
///
/// ZK compat: `ZxidUtils`. On the wire a zxid is a signed 64-bit value; every real zxid is
/// non-negative, so the conversion is lossless.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Zxid(pub u64);

impl Zxid {
    /// The zxid before any transaction.
    pub const ZERO: Zxid = Zxid(0);

    /// Builds a zxid from its epoch and counter.
    pub fn new(epoch: u32, counter: u32) -> Zxid {
        Zxid(((epoch as u64) << 32) | counter as u64)
    }

    /// The epoch in the high 32 bits.
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The counter in the low 32 bits.
    pub fn counter(self) -> u32 {
        self.0 as u32
    }

    /// The value as ZooKeeper puts it on the wire.
    pub fn to_wire(self) -> i64 {
        self.0 as i64
    }

    /// The zxid from a wire value; negative values (never a real zxid) map to zero.
    pub fn from_wire(value: i64) -> Zxid {
        Zxid(value.max(0) as u64)
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A client session id. ZK compat: the top byte is the id of the server that created it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct SessionId(pub i64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A client connection, named by the driver. Unique for the lifetime of a driver.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// A member of the ensemble (`myid`, 1..=255).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ServerId(pub u64);

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The sequence number of a durable write requested by the core. The driver reports
/// durability with `Input::Persisted { up_to }`, which covers every write `<= up_to`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct WriteId(pub u64);
