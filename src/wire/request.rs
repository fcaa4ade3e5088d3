//! The request records of `zookeeper.jute`, both ways: decoding a body into a [`Request`]
//! (server side) and encoding a [`Request`] into a body (client side: simulator, CLI, bench).
//!
//! One opcode maps to one record, except where a `Request` variant covers two opcodes
//! (`GetChildren` 8/12, `CheckWatches` 17/18, `SetWatches` 101/105, the four creates); the
//! opcode the encoder picks is [`Request::opcode`]. ZK compat: multi bodies follow
//! `MultiOperationRecord`: `MultiHeader{type, done, err}` + record, until a header with
//! `done`; a create sub-op with flags that are no `CreateMode` is undecodable, as in Java.
//! Trailing bytes after a record are ignored, as the Java server does.

use crate::wire::codec::RequestError;
use crate::wire::jute::{
    acl_vec_len, buffer_len, string_vec_len, ustring_len, DecodeError, Reader, Writer,
};
use crate::wire::proto::{CreateKind, CreateRequest, MultiOp, ReadOp, Request, SetWatches};
use crate::wire::types::{CreateMode, OpCode};

/// Encoded size of a `MultiHeader`.
pub(crate) const MULTI_HEADER_LEN: usize = 9;

impl Request {
    /// The opcode this request is sent with.
    pub fn opcode(&self) -> OpCode {
        match self {
            Request::Create(kind, _) => kind.opcode(),
            Request::Delete { .. } => OpCode::Delete,
            Request::Exists { .. } => OpCode::Exists,
            Request::GetData { .. } => OpCode::GetData,
            Request::SetData { .. } => OpCode::SetData,
            Request::GetAcl { .. } => OpCode::GetAcl,
            Request::SetAcl { .. } => OpCode::SetAcl,
            Request::GetChildren { with_stat: false, .. } => OpCode::GetChildren,
            Request::GetChildren { with_stat: true, .. } => OpCode::GetChildren2,
            Request::Sync { .. } => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::Check { .. } => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Auth { .. } => OpCode::Auth,
            Request::SetWatches(watches) if watches.is_v2() => OpCode::SetWatches2,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::AddWatch { .. } => OpCode::AddWatch,
            Request::CheckWatches { remove: false, .. } => OpCode::CheckWatches,
            Request::CheckWatches { remove: true, .. } => OpCode::RemoveWatches,
            Request::GetEphemerals { .. } => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber { .. } => OpCode::GetAllChildrenNumber,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
            Request::Sasl { .. } => OpCode::Sasl,
        }
    }
}

impl CreateKind {
    /// The opcode of this flavour of create (also its type inside a multi).
    pub fn opcode(self) -> OpCode {
        match self {
            CreateKind::Create => OpCode::Create,
            CreateKind::Create2 => OpCode::Create2,
            CreateKind::Container => OpCode::CreateContainer,
            CreateKind::Ttl => OpCode::CreateTtl,
        }
    }
}

impl MultiOp {
    /// The type this op carries in its `MultiHeader`.
    pub fn opcode(&self) -> OpCode {
        match self {
            MultiOp::Create(kind, _) => kind.opcode(),
            MultiOp::Delete { .. } => OpCode::Delete,
            MultiOp::SetData { .. } => OpCode::SetData,
            MultiOp::Check { .. } => OpCode::Check,
        }
    }
}

impl ReadOp {
    /// The type this op carries in its `MultiHeader`.
    pub fn opcode(&self) -> OpCode {
        match self {
            ReadOp::GetChildren { .. } => OpCode::GetChildren,
            ReadOp::GetData { .. } => OpCode::GetData,
        }
    }
}

impl SetWatches {
    /// Whether the request needs `setWatches2` (it has persistent watches to restore).
    pub fn is_v2(&self) -> bool {
        !self.persistent.is_empty() || !self.persistent_recursive.is_empty()
    }
}

/// Decodes the body of a request with opcode `opcode`.
pub(crate) fn read_request(opcode: i32, r: &mut Reader) -> Result<Request, RequestError> {
    let Some(op) = OpCode::from_code(opcode) else {
        return Err(RequestError::Unimplemented(opcode));
    };
    let request = match op {
        OpCode::Create => Request::Create(CreateKind::Create, read_create(r, false)?),
        OpCode::Create2 => Request::Create(CreateKind::Create2, read_create(r, false)?),
        OpCode::CreateContainer => Request::Create(CreateKind::Container, read_create(r, false)?),
        OpCode::CreateTtl => Request::Create(CreateKind::Ttl, read_create(r, true)?),
        OpCode::Delete => Request::Delete { path: r.read_string()?, version: r.read_i32()? },
        OpCode::Exists => Request::Exists { path: r.read_string()?, watch: r.read_bool()? },
        OpCode::GetData => Request::GetData { path: r.read_string()?, watch: r.read_bool()? },
        OpCode::SetData => Request::SetData {
            path: r.read_string()?,
            data: r.read_buffer()?,
            version: r.read_i32()?,
        },
        OpCode::GetAcl => Request::GetAcl { path: r.read_string()? },
        OpCode::SetAcl => Request::SetAcl {
            path: r.read_string()?,
            acl: r.read_acl_vec()?,
            version: r.read_i32()?,
        },
        OpCode::GetChildren | OpCode::GetChildren2 => Request::GetChildren {
            path: r.read_string()?,
            watch: r.read_bool()?,
            with_stat: op == OpCode::GetChildren2,
        },
        OpCode::Sync => Request::Sync { path: r.read_string()? },
        OpCode::Ping => Request::Ping,
        OpCode::Check => Request::Check { path: r.read_string()?, version: r.read_i32()? },
        OpCode::Multi => Request::Multi(read_multi(r)?),
        OpCode::MultiRead => Request::MultiRead(read_multi_read(r)?),
        OpCode::Auth => Request::Auth {
            auth_type: r.read_i32()?,
            scheme: r.read_string()?,
            auth: r.read_buffer()?.unwrap_or_default(),
        },
        OpCode::SetWatches => Request::SetWatches(read_set_watches(r, false)?),
        OpCode::SetWatches2 => Request::SetWatches(read_set_watches(r, true)?),
        OpCode::AddWatch => Request::AddWatch { path: r.read_string()?, mode: r.read_i32()? },
        OpCode::CheckWatches | OpCode::RemoveWatches => Request::CheckWatches {
            path: r.read_string()?,
            watcher_type: r.read_i32()?,
            remove: op == OpCode::RemoveWatches,
        },
        // ZK compat: FinalRequestProcessor treats a null prefix like an empty one (all).
        OpCode::GetEphemerals => {
            Request::GetEphemerals { prefix: r.read_ustring()?.unwrap_or_default() }
        }
        OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber { path: r.read_string()? },
        OpCode::WhoAmI => Request::WhoAmI,
        OpCode::CloseSession => Request::CloseSession,
        OpCode::Sasl => Request::Sasl { token: r.read_buffer()?.unwrap_or_default() },
        // Not requests a client may send to this server (reconfig is unsupported).
        OpCode::Notification
        | OpCode::Reconfig
        | OpCode::DeleteContainer
        | OpCode::CreateSession
        | OpCode::Error => return Err(RequestError::Unimplemented(opcode)),
    };
    Ok(request)
}

/// Encodes the body of `request` (the `RequestHeader` is the caller's).
pub(crate) fn put_request(w: &mut Writer, request: &Request) {
    match request {
        Request::Create(kind, create) => put_create(w, create, *kind == CreateKind::Ttl),
        Request::Delete { path, version } | Request::Check { path, version } => {
            w.put_ustring(path);
            w.put_i32(*version);
        }
        Request::Exists { path, watch }
        | Request::GetData { path, watch }
        | Request::GetChildren { path, watch, .. } => {
            w.put_ustring(path);
            w.put_bool(*watch);
        }
        Request::SetData { path, data, version } => {
            put_set_data(w, path, data.as_deref(), *version)
        }
        Request::GetAcl { path }
        | Request::Sync { path }
        | Request::GetAllChildrenNumber { path }
        | Request::GetEphemerals { prefix: path } => w.put_ustring(path),
        Request::SetAcl { path, acl, version } => {
            w.put_ustring(path);
            w.put_acl_vec(acl);
            w.put_i32(*version);
        }
        Request::Ping | Request::WhoAmI | Request::CloseSession => {}
        Request::Multi(ops) => {
            for op in ops {
                put_multi_header(w, op.opcode().code());
                put_multi_op(w, op);
            }
            put_multi_end(w);
        }
        Request::MultiRead(ops) => {
            for op in ops {
                let (ReadOp::GetChildren { path } | ReadOp::GetData { path }) = op;
                put_multi_header(w, op.opcode().code());
                w.put_ustring(path);
                w.put_bool(false);
            }
            put_multi_end(w);
        }
        Request::Auth { auth_type, scheme, auth } => {
            w.put_i32(*auth_type);
            w.put_ustring(scheme);
            w.put_buffer(Some(auth));
        }
        Request::SetWatches(watches) => put_set_watches(w, watches),
        Request::Sasl { token } => w.put_buffer(Some(token)),
        Request::AddWatch { path, mode: value }
        | Request::CheckWatches { path, watcher_type: value, .. } => {
            w.put_ustring(path);
            w.put_i32(*value);
        }
    }
}

/// Exact size of the body `put_request` writes.
pub(crate) fn request_len(request: &Request) -> usize {
    match request {
        Request::Create(kind, create) => create_len(create, *kind == CreateKind::Ttl),
        Request::Delete { path, .. }
        | Request::Check { path, .. }
        | Request::AddWatch { path, .. }
        | Request::CheckWatches { path, .. } => ustring_len(path) + 4,
        Request::Exists { path, .. }
        | Request::GetData { path, .. }
        | Request::GetChildren { path, .. } => ustring_len(path) + 1,
        Request::SetData { path, data, .. } => ustring_len(path) + buffer_len(data.as_deref()) + 4,
        Request::GetAcl { path }
        | Request::Sync { path }
        | Request::GetAllChildrenNumber { path }
        | Request::GetEphemerals { prefix: path } => ustring_len(path),
        Request::SetAcl { path, acl, .. } => ustring_len(path) + acl_vec_len(acl) + 4,
        Request::Ping | Request::WhoAmI | Request::CloseSession => 0,
        Request::Multi(ops) => {
            let ops_len: usize = ops.iter().map(|op| MULTI_HEADER_LEN + multi_op_len(op)).sum();
            ops_len + MULTI_HEADER_LEN
        }
        Request::MultiRead(ops) => {
            let ops_len: usize = ops
                .iter()
                .map(|(ReadOp::GetChildren { path } | ReadOp::GetData { path })| {
                    MULTI_HEADER_LEN + ustring_len(path) + 1
                })
                .sum();
            ops_len + MULTI_HEADER_LEN
        }
        Request::Auth { scheme, auth, .. } => 4 + ustring_len(scheme) + buffer_len(Some(auth)),
        Request::Sasl { token } => buffer_len(Some(token)),
        Request::SetWatches(watches) => {
            let lists = [&watches.data, &watches.exist, &watches.child];
            let v2_lists = [&watches.persistent, &watches.persistent_recursive];
            let v2_len =
                if watches.is_v2() { v2_lists.map(|l| string_vec_len(l)).iter().sum() } else { 0 };
            8 + lists.map(|l| string_vec_len(l)).iter().sum::<usize>() + v2_len
        }
    }
}

fn read_create(r: &mut Reader, with_ttl: bool) -> Result<CreateRequest, DecodeError> {
    Ok(CreateRequest {
        path: r.read_string()?,
        data: r.read_buffer()?,
        acl: r.read_acl_vec()?,
        flags: r.read_i32()?,
        ttl: if with_ttl { Some(r.read_i64()?) } else { None },
    })
}

/// Writes a `CreateRequest`, or a `CreateTTLRequest` when `with_ttl` (a missing TTL is sent
/// as -1, Java's "no TTL"; a TTL on any other kind is not sent).
fn put_create(w: &mut Writer, create: &CreateRequest, with_ttl: bool) {
    w.put_ustring(&create.path);
    w.put_buffer(create.data.as_deref());
    w.put_acl_vec(&create.acl);
    w.put_i32(create.flags);
    if with_ttl {
        w.put_i64(create.ttl.unwrap_or(-1));
    }
}

fn create_len(create: &CreateRequest, with_ttl: bool) -> usize {
    let ttl_len = if with_ttl { 8 } else { 0 };
    ustring_len(&create.path)
        + buffer_len(create.data.as_deref())
        + acl_vec_len(&create.acl)
        + 4
        + ttl_len
}

fn put_set_data(w: &mut Writer, path: &str, data: Option<&[u8]>, version: i32) {
    w.put_ustring(path);
    w.put_buffer(data);
    w.put_i32(version);
}

/// Reads the sub-ops of a write multi. ZK compat: `MultiOperationRecord.deserialize`; read
/// ops make the record undecodable here (Java rejects mixing kinds while decoding and a
/// read-only record in op 14 later, with the same -5).
fn read_multi(r: &mut Reader) -> Result<Vec<MultiOp>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let offset = r.offset();
        let Some(op_type) = read_multi_header(r)? else {
            return Ok(ops);
        };
        let op = match OpCode::from_code(op_type) {
            Some(OpCode::Create) => MultiOp::Create(CreateKind::Create, read_multi_create(r)?),
            Some(OpCode::Create2) => MultiOp::Create(CreateKind::Create2, read_multi_create(r)?),
            Some(OpCode::CreateContainer) => {
                MultiOp::Create(CreateKind::Container, read_multi_create(r)?)
            }
            Some(OpCode::CreateTtl) => MultiOp::Create(CreateKind::Ttl, read_create(r, true)?),
            Some(OpCode::Delete) => {
                MultiOp::Delete { path: r.read_string()?, version: r.read_i32()? }
            }
            Some(OpCode::SetData) => MultiOp::SetData {
                path: r.read_string()?,
                data: r.read_buffer()?,
                version: r.read_i32()?,
            },
            Some(OpCode::Check) => {
                MultiOp::Check { path: r.read_string()?, version: r.read_i32()? }
            }
            Some(OpCode::GetData | OpCode::GetChildren) => {
                return Err(DecodeError::Invalid { offset, what: "read op in a write multi" });
            }
            _ => return Err(DecodeError::Invalid { offset, what: "unknown op type in a multi" }),
        };
        ops.push(op);
    }
}

/// A create sub-op of type 1, 15 or 19. ZK compat: `MultiOperationRecord` rejects flags that
/// are no `CreateMode` while decoding (createTTL's are left to request preparation).
fn read_multi_create(r: &mut Reader) -> Result<CreateRequest, DecodeError> {
    let offset = r.offset();
    let create = read_create(r, false)?;
    if CreateMode::from_code(create.flags).is_none() {
        return Err(DecodeError::Invalid { offset, what: "invalid create flags in a multi" });
    }
    Ok(create)
}

fn read_multi_read(r: &mut Reader) -> Result<Vec<ReadOp>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let offset = r.offset();
        let Some(op_type) = read_multi_header(r)? else {
            return Ok(ops);
        };
        // ZK compat: the watch flag is read and ignored; multiRead never leaves watches.
        let op = match OpCode::from_code(op_type) {
            Some(OpCode::GetData) => ReadOp::GetData { path: r.read_string()? },
            Some(OpCode::GetChildren) => ReadOp::GetChildren { path: r.read_string()? },
            Some(
                OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
                | OpCode::Delete
                | OpCode::SetData
                | OpCode::Check,
            ) => return Err(DecodeError::Invalid { offset, what: "write op in a multiRead" }),
            _ => return Err(DecodeError::Invalid { offset, what: "unknown op type in a multi" }),
        };
        r.read_bool()?;
        ops.push(op);
    }
}

fn put_multi_op(w: &mut Writer, op: &MultiOp) {
    match op {
        MultiOp::Create(kind, create) => put_create(w, create, *kind == CreateKind::Ttl),
        MultiOp::Delete { path, version } | MultiOp::Check { path, version } => {
            w.put_ustring(path);
            w.put_i32(*version);
        }
        MultiOp::SetData { path, data, version } => {
            put_set_data(w, path, data.as_deref(), *version)
        }
    }
}

fn multi_op_len(op: &MultiOp) -> usize {
    match op {
        MultiOp::Create(kind, create) => create_len(create, *kind == CreateKind::Ttl),
        MultiOp::Delete { path, .. } | MultiOp::Check { path, .. } => ustring_len(path) + 4,
        MultiOp::SetData { path, data, .. } => ustring_len(path) + buffer_len(data.as_deref()) + 4,
    }
}

/// Reads a `MultiHeader`; `None` for the terminating one (`done`, whatever its type).
/// The `err` field of a request header carries nothing (clients send -1).
pub(crate) fn read_multi_header(r: &mut Reader) -> Result<Option<i32>, DecodeError> {
    let op_type = r.read_i32()?;
    let done = r.read_bool()?;
    r.read_i32()?;
    Ok((!done).then_some(op_type))
}

/// Writes the `MultiHeader` of a request sub-op.
fn put_multi_header(w: &mut Writer, op_type: i32) {
    w.put_i32(op_type);
    w.put_bool(false);
    w.put_i32(-1);
}

/// Writes the terminating `MultiHeader{-1, true, -1}` (requests and responses alike).
pub(crate) fn put_multi_end(w: &mut Writer) {
    w.put_i32(-1);
    w.put_bool(true);
    w.put_i32(-1);
}

fn read_set_watches(r: &mut Reader, v2: bool) -> Result<SetWatches, DecodeError> {
    let mut watches = SetWatches {
        relative_zxid: r.read_i64()?,
        data: r.read_string_vec()?,
        exist: r.read_string_vec()?,
        child: r.read_string_vec()?,
        ..SetWatches::default()
    };
    if v2 {
        watches.persistent = r.read_string_vec()?;
        watches.persistent_recursive = r.read_string_vec()?;
    }
    Ok(watches)
}

fn put_set_watches(w: &mut Writer, watches: &SetWatches) {
    w.put_i64(watches.relative_zxid);
    w.put_string_vec(&watches.data);
    w.put_string_vec(&watches.exist);
    w.put_string_vec(&watches.child);
    if watches.is_v2() {
        w.put_string_vec(&watches.persistent);
        w.put_string_vec(&watches.persistent_recursive);
    }
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, Bytes, BytesMut};
    use proptest::prelude::*;

    use super::*;
    use crate::wire::codec::{decode_request, decode_request_header, encode_request};
    use crate::wire::frame::FrameDecoder;
    use crate::wire::types::{Acl, Id};

    fn path() -> impl Strategy<Value = String> {
        ".{0,12}"
    }

    fn data() -> impl Strategy<Value = Option<Bytes>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from))
    }

    fn acl() -> impl Strategy<Value = Vec<Acl>> {
        let entry = (any::<i32>(), ".{0,6}", ".{0,10}")
            .prop_map(|(perms, scheme, id)| Acl { perms, id: Id { scheme, id } });
        proptest::collection::vec(entry, 0..3)
    }

    fn names() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(path(), 0..3)
    }

    /// Creates as a client sends them: a TTL exactly for createTTL, and (outside createTTL,
    /// whose flags request preparation checks) flags that are a `CreateMode`.
    fn create() -> impl Strategy<Value = (CreateKind, CreateRequest)> {
        let kind = prop_oneof![
            Just(CreateKind::Create),
            Just(CreateKind::Create2),
            Just(CreateKind::Container),
            Just(CreateKind::Ttl),
        ];
        (kind, path(), data(), acl(), 0..7i32, any::<i32>(), any::<i64>()).prop_map(
            |(kind, path, data, acl, mode, raw_flags, ttl)| {
                let ttl_kind = kind == CreateKind::Ttl;
                let flags = if ttl_kind { raw_flags } else { mode };
                let ttl = ttl_kind.then_some(ttl);
                (kind, CreateRequest { path, data, acl, flags, ttl })
            },
        )
    }

    fn multi_op() -> impl Strategy<Value = MultiOp> {
        prop_oneof![
            create().prop_map(|(kind, create)| MultiOp::Create(kind, create)),
            (path(), any::<i32>()).prop_map(|(path, version)| MultiOp::Delete { path, version }),
            (path(), data(), any::<i32>()).prop_map(|(path, data, version)| MultiOp::SetData {
                path,
                data,
                version
            }),
            (path(), any::<i32>()).prop_map(|(path, version)| MultiOp::Check { path, version }),
        ]
    }

    fn read_op() -> impl Strategy<Value = ReadOp> {
        prop_oneof![
            path().prop_map(|path| ReadOp::GetChildren { path }),
            path().prop_map(|path| ReadOp::GetData { path }),
        ]
    }

    fn set_watches() -> impl Strategy<Value = SetWatches> {
        (any::<i64>(), names(), names(), names(), names(), names()).prop_map(
            |(relative_zxid, data, exist, child, persistent, persistent_recursive)| SetWatches {
                relative_zxid,
                data,
                exist,
                child,
                persistent,
                persistent_recursive,
            },
        )
    }

    pub(crate) fn arb_request() -> impl Strategy<Value = Request> {
        prop_oneof![
            create().prop_map(|(kind, create)| Request::Create(kind, create)),
            (path(), any::<i32>()).prop_map(|(path, version)| Request::Delete { path, version }),
            (path(), any::<bool>()).prop_map(|(path, watch)| Request::Exists { path, watch }),
            (path(), any::<bool>()).prop_map(|(path, watch)| Request::GetData { path, watch }),
            (path(), data(), any::<i32>()).prop_map(|(path, data, version)| Request::SetData {
                path,
                data,
                version
            }),
            path().prop_map(|path| Request::GetAcl { path }),
            (path(), acl(), any::<i32>()).prop_map(|(path, acl, version)| Request::SetAcl {
                path,
                acl,
                version
            }),
            (path(), any::<bool>(), any::<bool>()).prop_map(|(path, watch, with_stat)| {
                Request::GetChildren { path, watch, with_stat }
            }),
            path().prop_map(|path| Request::Sync { path }),
            Just(Request::Ping),
            (path(), any::<i32>()).prop_map(|(path, version)| Request::Check { path, version }),
            proptest::collection::vec(multi_op(), 0..4).prop_map(Request::Multi),
            proptest::collection::vec(read_op(), 0..4).prop_map(Request::MultiRead),
            (any::<i32>(), path(), data()).prop_map(|(auth_type, scheme, auth)| Request::Auth {
                auth_type,
                scheme,
                auth: auth.unwrap_or_default(),
            }),
            set_watches().prop_map(Request::SetWatches),
            (path(), any::<i32>()).prop_map(|(path, mode)| Request::AddWatch { path, mode }),
            (path(), any::<i32>(), any::<bool>()).prop_map(|(path, watcher_type, remove)| {
                Request::CheckWatches { path, watcher_type, remove }
            }),
            path().prop_map(|prefix| Request::GetEphemerals { prefix }),
            path().prop_map(|path| Request::GetAllChildrenNumber { path }),
            Just(Request::WhoAmI),
            data().prop_map(|token| Request::Sasl { token: token.unwrap_or_default() }),
            Just(Request::CloseSession),
        ]
    }

    /// Writes one hand-made sub-op record.
    type PutRecord = fn(&mut Writer);

    /// Builds a request body by hand: a multi whose sub-ops are `(type, record writer)`.
    fn multi_body(ops: &[(i32, PutRecord)]) -> Bytes {
        let mut out = BytesMut::new();
        let mut w = Writer::new(&mut out);
        for (op_type, put_record) in ops {
            put_multi_header(&mut w, *op_type);
            put_record(&mut w);
        }
        put_multi_end(&mut w);
        out.freeze()
    }

    fn path_and_version(w: &mut Writer) {
        w.put_ustring("/a");
        w.put_i32(-1);
    }

    fn path_and_watch(w: &mut Writer) {
        w.put_ustring("/a");
        w.put_bool(true);
    }

    fn create_with_flags_7(w: &mut Writer) {
        w.put_ustring("/a");
        w.put_buffer(None);
        w.put_acl_vec(&Acl::open_unsafe());
        w.put_i32(7);
    }

    #[test]
    fn multi_sub_ops_must_match_the_multi_kind() {
        let marshalling_at = |opcode, body, offset, what| {
            assert_eq!(
                decode_request(opcode, body),
                Err(RequestError::Marshalling(DecodeError::Invalid { offset, what }))
            );
        };
        let read_in_write = multi_body(&[(2, path_and_version), (4, path_and_watch)]);
        marshalling_at(14, read_in_write, 19, "read op in a write multi");
        let write_in_read = multi_body(&[(8, path_and_watch), (13, path_and_version)]);
        marshalling_at(22, write_in_read, 16, "write op in a multiRead");
        let unknown = multi_body(&[(3, path_and_watch)]);
        marshalling_at(14, unknown.clone(), 0, "unknown op type in a multi");
        marshalling_at(22, unknown, 0, "unknown op type in a multi");
        let bad_flags = multi_body(&[(1, create_with_flags_7)]);
        marshalling_at(14, bad_flags, 9, "invalid create flags in a multi");
    }

    #[test]
    fn multi_read_ignores_the_watch_flag_and_a_multi_may_be_empty() {
        let body = multi_body(&[(8, path_and_watch), (4, path_and_watch)]);
        let expected = vec![
            ReadOp::GetChildren { path: "/a".to_string() },
            ReadOp::GetData { path: "/a".to_string() },
        ];
        assert_eq!(decode_request(22, body), Ok(Request::MultiRead(expected)));
        assert_eq!(decode_request(14, multi_body(&[])), Ok(Request::Multi(Vec::new())));
    }

    #[test]
    fn a_multi_without_its_terminator_is_marshalling() {
        let body = multi_body(&[(2, path_and_version)]);
        let cut = body.slice(..body.len() - MULTI_HEADER_LEN);
        assert_eq!(
            decode_request(14, cut),
            Err(RequestError::Marshalling(DecodeError::Truncated { offset: 19 }))
        );
    }

    #[test]
    fn unserved_opcodes_are_unimplemented() {
        for opcode in [0, 10, 16, 20, -10, -1, 23, 99, 108, i32::MIN, i32::MAX] {
            assert_eq!(
                decode_request(opcode, Bytes::new()),
                Err(RequestError::Unimplemented(opcode)),
                "opcode {opcode}"
            );
        }
    }

    #[test]
    fn the_opcode_follows_the_variant() {
        let path = || "/a".to_string();
        let children2 = Request::GetChildren { path: path(), watch: false, with_stat: true };
        assert_eq!(children2.opcode().code(), 12);
        let remove = Request::CheckWatches { path: path(), watcher_type: 3, remove: true };
        assert_eq!(remove.opcode().code(), 18);
        let mut watches = SetWatches { data: vec![path()], ..SetWatches::default() };
        assert_eq!(Request::SetWatches(watches.clone()).opcode().code(), 101);
        watches.persistent_recursive.push(path());
        assert_eq!(Request::SetWatches(watches).opcode().code(), 105);
        let container =
            CreateRequest { path: path(), data: None, acl: vec![], flags: 4, ttl: None };
        assert_eq!(Request::Create(CreateKind::Container, container).opcode().code(), 19);
    }

    #[test]
    fn set_watches_2_carries_the_persistent_lists() {
        let watches = SetWatches {
            relative_zxid: 0x10,
            data: vec![],
            exist: vec!["/e".to_string()],
            child: vec![],
            persistent: vec![],
            persistent_recursive: vec!["/r".to_string()],
        };
        let frame = encode_request(-8, &Request::SetWatches(watches));
        let mut expected = BytesMut::new();
        expected.put_slice(&[0, 0, 0, 0x30, 0xff, 0xff, 0xff, 0xf8, 0, 0, 0, 105]);
        expected.put_i64(0x10);
        expected.put_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, b'/', b'e', 0, 0, 0, 0]);
        expected.put_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, b'/', b'r']);
        assert_eq!(frame, expected.freeze());
    }

    proptest! {
        #[test]
        fn requests_round_trip(xid in any::<i32>(), request in arb_request()) {
            let mut stream = BytesMut::from(&encode_request(xid, &request)[..]);
            let frame = FrameDecoder::new(usize::MAX).decode(&mut stream)?.expect("a whole frame");
            prop_assert!(stream.is_empty());
            let (header, body) = decode_request_header(&frame)?;
            prop_assert_eq!(header.xid, xid);
            prop_assert_eq!(header.opcode, request.opcode().code());
            prop_assert_eq!(decode_request(header.opcode, body)?, request);
        }

        #[test]
        fn arbitrary_bodies_never_panic(
            opcode in prop_oneof![-12..110i32, any::<i32>()],
            body in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            if let Ok(request) = decode_request(opcode, Bytes::from(body)) {
                // Whatever decodes re-encodes to something that decodes to the same request.
                let frame = encode_request(1, &request).slice(4..);
                let (header, body) = decode_request_header(&frame)?;
                prop_assert_eq!(decode_request(header.opcode, body)?, request);
            }
        }
    }
}
