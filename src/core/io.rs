//! The sans-IO boundary: what a driver hands to `Node::step` and what the node asks it to do.

use ::core::net::SocketAddr;

use bytes::Bytes;

use crate::core::ids::{ConnId, ServerId, WriteId, Zxid};
use crate::core::snapshot::SnapshotImage;
use crate::core::txn::Txn;
use crate::core::zab::PeerMsg;
use crate::wire::types::Id;

/// Something the driver observed. Every input comes with the `Now` at which it was observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The node's deadline passed (or the driver just wants it to look at the clock).
    /// May produce: `CloseClient` for expired sessions and idle handshakes, `Write` of a
    /// `CloseSession` txn, `SendClient` of watch events.
    Tick,
    /// A client opened a TCP connection. Produces nothing by itself.
    ClientConnected {
        /// The driver's name for the connection.
        conn: ConnId,
        /// The client's address (for `ip` ACLs and `cons`).
        addr: SocketAddr,
        /// Ids the transport authenticated (a TLS client certificate's `x509` id, and `super`
        /// for the x509 super user), held by the connection like `addauth` ids.
        auth: Vec<Id>,
    },
    /// One complete frame (the payload after the 4-byte length prefix) from a client.
    /// May produce `SendClient`, `CloseClient` and `Write`.
    ClientFrame {
        /// The connection it came on.
        conn: ConnId,
        /// The frame payload.
        frame: Bytes,
    },
    /// The client's connection closed (by either side). The session lives on until it expires.
    ClientClosed {
        /// The connection that closed.
        conn: ConnId,
    },
    /// A message from another member, delivered in order per link.
    /// May produce `SendPeer`, `Write`, `SendClient` and `CloseClient`.
    PeerMessage {
        /// The sender.
        from: ServerId,
        /// The message.
        msg: PeerMsg,
    },
    /// A link to another member is up (messages sent from now on may arrive).
    PeerLinkUp {
        /// The member.
        peer: ServerId,
    },
    /// A link to another member broke; messages in flight on it are lost.
    PeerLinkDown {
        /// The member.
        peer: ServerId,
    },
    /// Every durable write with id `<= up_to` is on stable storage.
    /// May produce `SendClient` (write replies, watch events) and further `Write`s.
    Persisted {
        /// The highest durable write id.
        up_to: WriteId,
    },
}

/// Something the node asks the driver to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Write one frame to a client. `frame` already carries its 4-byte length prefix.
    SendClient {
        /// Destination connection.
        conn: ConnId,
        /// Length-prefixed frame bytes.
        frame: Bytes,
    },
    /// Close a client connection once every frame sent before this effect is flushed.
    CloseClient {
        /// The connection to close.
        conn: ConnId,
    },
    /// Send a message to another member over the link to it (dropped if the link is down).
    SendPeer {
        /// The member.
        to: ServerId,
        /// The message.
        msg: PeerMsg,
    },
    /// Make something durable. The driver reports completion with `Input::Persisted`; it may
    /// batch many writes under one fsync but must make them durable in id order.
    Write {
        /// The write's sequence number (strictly increasing).
        id: WriteId,
        /// What to write.
        write: DurableWrite,
    },
}

/// A write the driver must make durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurableWrite {
    /// Append one txn to the transaction log.
    Append(Txn),
    /// Store a snapshot of the tree and session table that reflects every txn `<= zxid`, then
    /// start a new log segment for the appends that follow. The driver encodes the image
    /// (`SnapshotImage::encoder`), off the node loop.
    Snapshot {
        /// The last txn the snapshot covers.
        zxid: Zxid,
        /// The state to store, frozen and shared.
        image: SnapshotImage,
        /// A periodic snapshot (every `snapCount` txns, or after a restart): nothing waits
        /// for it, so the driver may write it in the background and count the write done at
        /// once, as long as it keeps the log it covers until the snapshot is durable (and
        /// never lets a later truncation be undone by it). `false` for a snapshot that
        /// replaces the history (a learner's SNAP): durable in order, like any other write.
        background: bool,
    },
    /// Drop every logged txn with zxid `> after` (Zab TRUNC).
    Truncate {
        /// The last txn to keep.
        after: Zxid,
    },
    /// Record the accepted epoch (Zab discovery).
    AcceptedEpoch(u32),
    /// Record the current epoch (Zab sync).
    CurrentEpoch(u32),
}
