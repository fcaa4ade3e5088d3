//! Jute primitives: the binary encoding of every ZooKeeper record, plus the small records
//! (`Stat`, `Id`, `ACL`) that the client protocol nests inside others.
//!
//! ZK compat: mirrors `org.apache.jute.BinaryInputArchive` / `BinaryOutputArchive`. Everything is
//! big-endian; `ustring` and `buffer` are an `int` length followed by the bytes, with length -1
//! meaning null; a `vector` is an `int` count (-1 = null) followed by the elements; nested records
//! are inlined with no tag or length.
//!
//! Invariants of [`Reader`]:
//! - it never panics and never allocates more than the bytes that remain in its input, whatever
//!   a declared length or count says (a frame is itself bounded by `jute.maxbuffer`, so this also
//!   bounds every field by the configured maximum);
//! - every error carries the offset at which the offending field starts;
//! - `buffer` fields read from a [`Bytes`] are zero-copy slices of it.
//!
//! Compared with the Java reader, two choices are stricter and one is looser:
//! - a `ustring` that is not valid UTF-8 is an error (Java substitutes U+FFFD);
//! - a length or count below -1 is an error right away (Java fails later, reading or
//!   allocating), and so is one longer than what remains;
//! - a declared count is not checked against `jute.maxbuffer`; it cannot exceed the remaining
//!   bytes divided by the smallest element size anyway.

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::types::{Acl, Id, Stat};

/// Encoded size of a `Stat` record.
pub const STAT_LEN: usize = 68;

/// Why bytes could not be decoded. Offsets count from the start of the decoded slice.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a field (or a declared length runs past its end).
    #[error("input ended early: field at byte {offset} needs more bytes")]
    Truncated {
        /// Where the field that did not fit starts.
        offset: usize,
    },
    /// A length or element count below -1.
    #[error("negative length {len} at byte {offset}")]
    NegativeLength {
        /// Where the length field starts.
        offset: usize,
        /// The declared length.
        len: i32,
    },
    /// A `ustring` that must be present was null (length -1).
    #[error("null string at byte {offset}")]
    NullString {
        /// Where the string starts.
        offset: usize,
    },
    /// A `ustring` that is not UTF-8.
    #[error("invalid UTF-8 in string at byte {offset}")]
    InvalidUtf8 {
        /// Where the string starts.
        offset: usize,
    },
    /// A well-formed field with a value the record does not allow.
    #[error("{what} at byte {offset}")]
    Invalid {
        /// Where the field starts.
        offset: usize,
        /// What is wrong with it.
        what: &'static str,
    },
}

/// A cursor over one encoded record (or several laid end to end).
///
/// Build it with [`Reader::new`] over a `Bytes` to get zero-copy `buffer` fields, or with
/// [`Reader::from_slice`] when only a slice is at hand (buffers are then copied).
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    /// The same bytes as `data`, when they came as `Bytes` and can be sliced without copying.
    shared: Option<&'a Bytes>,
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes` whose `buffer` fields share its storage.
    pub fn new(bytes: &'a Bytes) -> Reader<'a> {
        Reader { data: bytes, shared: Some(bytes), pos: 0 }
    }

    /// A reader over a plain slice; `buffer` fields are copied out of it.
    pub fn from_slice(data: &'a [u8]) -> Reader<'a> {
        Reader { data, shared: None, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Everything not yet consumed, without consuming it (zero-copy when built from `Bytes`).
    pub fn rest(&self) -> Bytes {
        self.slice(self.pos, self.data.len())
    }

    /// Reads a big-endian `int`.
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take_array()?))
    }

    /// Reads a big-endian `long`.
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.take_array()?))
    }

    /// Reads a `boolean`. ZK compat: like Java's `DataInput.readBoolean`, any non-zero byte is
    /// true.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        let [byte] = self.take_array()?;
        Ok(byte != 0)
    }

    /// Reads a `buffer`; `None` for the null buffer (length -1).
    pub fn read_buffer(&mut self) -> Result<Option<Bytes>, DecodeError> {
        let Some((start, end)) = self.take_sized()? else {
            return Ok(None);
        };
        Ok(Some(self.slice(start, end)))
    }

    /// Reads a `ustring`; `None` for the null string (length -1).
    pub fn read_ustring(&mut self) -> Result<Option<String>, DecodeError> {
        let offset = self.pos;
        let Some((start, end)) = self.take_sized()? else {
            return Ok(None);
        };
        match std::str::from_utf8(&self.data[start..end]) {
            Ok(text) => Ok(Some(text.to_owned())),
            Err(_) => Err(DecodeError::InvalidUtf8 { offset }),
        }
    }

    /// Reads a `ustring` that must not be null (paths, schemes, names).
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        let offset = self.pos;
        self.read_ustring()?.ok_or(DecodeError::NullString { offset })
    }

    /// Reads a `vector` whose elements each take at least `element_len_min` bytes (at least 1).
    /// A null vector (count -1) reads as empty: no client record distinguishes the two.
    ///
    /// The count is checked against the remaining bytes before anything is allocated.
    pub fn read_vec<T>(
        &mut self,
        element_len_min: usize,
        mut read_element: impl FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let offset = self.pos;
        let count = self.read_i32()?;
        if count == -1 {
            return Ok(Vec::new());
        }
        let count = usize::try_from(count)
            .map_err(|_| DecodeError::NegativeLength { offset, len: count })?;
        if count > self.remaining() / element_len_min.max(1) {
            return Err(DecodeError::Truncated { offset });
        }
        let mut elements = Vec::with_capacity(count);
        for _ in 0..count {
            elements.push(read_element(self)?);
        }
        Ok(elements)
    }

    /// Reads a `vector<ustring>` of non-null strings.
    pub fn read_string_vec(&mut self) -> Result<Vec<String>, DecodeError> {
        self.read_vec(4, Reader::read_string)
    }

    /// Reads a `Stat` record.
    pub fn read_stat(&mut self) -> Result<Stat, DecodeError> {
        if self.remaining() < STAT_LEN {
            return Err(DecodeError::Truncated { offset: self.pos });
        }
        Ok(Stat {
            czxid: self.read_i64()?,
            mzxid: self.read_i64()?,
            ctime: self.read_i64()?,
            mtime: self.read_i64()?,
            version: self.read_i32()?,
            cversion: self.read_i32()?,
            aversion: self.read_i32()?,
            ephemeral_owner: self.read_i64()?,
            data_length: self.read_i32()?,
            num_children: self.read_i32()?,
            pzxid: self.read_i64()?,
        })
    }

    /// Reads an `Id` record, mapping a null field to what ZooKeeper makes of it.
    ///
    /// ZK compat: jute reads a null string as Java `null`, and only
    /// `PrepRequestProcessor.fixupACL` judges it: an `auth` entry's id is ignored (kazoo sends
    /// `CREATOR_ALL_ACL` as `auth` with a null id), a scheme without a provider, null included,
    /// is `InvalidACL`, and a null id under `world`, `digest` or `ip` dereferences the null
    /// (a `MarshallingError`). So a null scheme reads as `""` and a null id as `""`, which
    /// `fixup` judges the same way, except under those three schemes, where it is an error
    /// here. (ZooKeeper's `removeDuplicates` can also throw on a null compared with an earlier
    /// entry of equal perms: that corner is not copied.)
    pub fn read_id(&mut self) -> Result<Id, DecodeError> {
        let scheme = self.read_ustring()?.unwrap_or_default();
        let offset = self.pos;
        match self.read_ustring()? {
            Some(id) => Ok(Id { scheme, id }),
            None if matches!(scheme.as_str(), "world" | "digest" | "ip") => {
                Err(DecodeError::NullString { offset })
            }
            None => Ok(Id { scheme, id: String::new() }),
        }
    }

    /// Reads an `ACL` record.
    pub fn read_acl(&mut self) -> Result<Acl, DecodeError> {
        Ok(Acl { perms: self.read_i32()?, id: self.read_id()? })
    }

    /// Reads a `vector<ACL>` (null reads as empty).
    pub fn read_acl_vec(&mut self) -> Result<Vec<Acl>, DecodeError> {
        // perms + two string lengths.
        self.read_vec(12, Reader::read_acl)
    }

    /// Consumes `N` bytes.
    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let end = self.pos + N;
        let field =
            self.data.get(self.pos..end).ok_or(DecodeError::Truncated { offset: self.pos })?;
        let array = field.try_into().expect("the slice is exactly N bytes long");
        self.pos = end;
        Ok(array)
    }

    /// Consumes a length-prefixed field and returns its byte range, or `None` for length -1.
    fn take_sized(&mut self) -> Result<Option<(usize, usize)>, DecodeError> {
        let offset = self.pos;
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| DecodeError::NegativeLength { offset, len })?;
        if len > self.remaining() {
            return Err(DecodeError::Truncated { offset });
        }
        let start = self.pos;
        self.pos += len;
        Ok(Some((start, self.pos)))
    }

    fn slice(&self, start: usize, end: usize) -> Bytes {
        match self.shared {
            Some(bytes) => bytes.slice(start..end),
            None => Bytes::copy_from_slice(&self.data[start..end]),
        }
    }
}

/// Appends jute fields to a `BytesMut`.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut BytesMut,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut BytesMut) -> Writer<'a> {
        Writer { out }
    }

    /// Writes an `int`.
    pub fn put_i32(&mut self, value: i32) {
        self.out.put_i32(value);
    }

    /// Writes a `long`.
    pub fn put_i64(&mut self, value: i64) {
        self.out.put_i64(value);
    }

    /// Writes a `boolean` as 0 or 1.
    pub fn put_bool(&mut self, value: bool) {
        self.out.put_u8(u8::from(value));
    }

    /// Writes a `buffer`; `None` becomes the null buffer (length -1).
    pub fn put_buffer(&mut self, value: Option<&[u8]>) {
        match value {
            Some(bytes) => {
                self.put_len(bytes.len());
                self.out.put_slice(bytes);
            }
            None => self.put_i32(-1),
        }
    }

    /// Writes a non-null `ustring`.
    pub fn put_ustring(&mut self, value: &str) {
        self.put_buffer(Some(value.as_bytes()));
    }

    /// Writes a `vector` of `values`, each with `put_element`.
    pub fn put_vec<T>(&mut self, values: &[T], mut put_element: impl FnMut(&mut Self, &T)) {
        self.put_len(values.len());
        for value in values {
            put_element(self, value);
        }
    }

    /// Writes a `vector<ustring>`.
    pub fn put_string_vec(&mut self, values: &[String]) {
        self.put_vec(values, |w, value| w.put_ustring(value));
    }

    /// Writes a `Stat` record.
    pub fn put_stat(&mut self, stat: &Stat) {
        self.put_i64(stat.czxid);
        self.put_i64(stat.mzxid);
        self.put_i64(stat.ctime);
        self.put_i64(stat.mtime);
        self.put_i32(stat.version);
        self.put_i32(stat.cversion);
        self.put_i32(stat.aversion);
        self.put_i64(stat.ephemeral_owner);
        self.put_i32(stat.data_length);
        self.put_i32(stat.num_children);
        self.put_i64(stat.pzxid);
    }

    /// Writes an `Id` record.
    pub fn put_id(&mut self, id: &Id) {
        self.put_ustring(&id.scheme);
        self.put_ustring(&id.id);
    }

    /// Writes an `ACL` record.
    pub fn put_acl(&mut self, acl: &Acl) {
        self.put_i32(acl.perms);
        self.put_id(&acl.id);
    }

    /// Writes a `vector<ACL>`.
    pub fn put_acl_vec(&mut self, acl: &[Acl]) {
        self.put_vec(acl, |w, entry| w.put_acl(entry));
    }

    /// Writes a length or count. Anything we encode lives in memory and is far below 2 GiB;
    /// a larger value is a bug upstream, and stopping beats writing a corrupt frame.
    fn put_len(&mut self, len: usize) {
        let len = i32::try_from(len).expect("jute lengths are below 2^31 bytes");
        self.put_i32(len);
    }
}

/// Encoded size of a `ustring`.
pub fn ustring_len(value: &str) -> usize {
    4 + value.len()
}

/// Encoded size of a `buffer`.
pub fn buffer_len(value: Option<&[u8]>) -> usize {
    4 + value.map_or(0, <[u8]>::len)
}

/// Encoded size of a `vector<ustring>`.
pub fn string_vec_len(values: &[String]) -> usize {
    4 + values.iter().map(|value| ustring_len(value)).sum::<usize>()
}

/// Encoded size of a `vector<ACL>`.
pub fn acl_vec_len(acl: &[Acl]) -> usize {
    4 + acl
        .iter()
        .map(|entry| 4 + ustring_len(&entry.id.scheme) + ustring_len(&entry.id.id))
        .sum::<usize>()
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;

    fn encode(f: impl FnOnce(&mut Writer)) -> Bytes {
        let mut out = BytesMut::new();
        f(&mut Writer::new(&mut out));
        out.freeze()
    }

    #[test]
    fn primitives_are_big_endian() {
        let bytes = encode(|w| {
            w.put_i32(0x0102_0304);
            w.put_i64(-2);
            w.put_bool(true);
            w.put_bool(false);
        });
        assert_eq!(&bytes[..], &[1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 1, 0]);
    }

    #[test]
    fn null_and_empty_buffers_differ() {
        let bytes = encode(|w| {
            w.put_buffer(None);
            w.put_buffer(Some(b""));
            w.put_ustring("/a");
        });
        assert_eq!(&bytes[..], &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 2, b'/', b'a']);
        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.read_buffer(), Ok(None));
        assert_eq!(reader.read_buffer(), Ok(Some(Bytes::new())));
        assert_eq!(reader.read_string(), Ok("/a".to_string()));
        assert_eq!(reader.remaining(), 0);
    }

    #[test]
    fn buffers_share_the_input_storage() {
        let bytes = encode(|w| w.put_buffer(Some(b"payload")));
        let data = Reader::new(&bytes).read_buffer().unwrap().unwrap();
        assert_eq!(&data[..], b"payload");
        assert_eq!(data.as_ptr(), bytes[4..].as_ptr());
    }

    #[test]
    fn any_non_zero_byte_is_true() {
        assert_eq!(Reader::from_slice(&[7]).read_bool(), Ok(true));
        assert_eq!(Reader::from_slice(&[0]).read_bool(), Ok(false));
    }

    #[test]
    fn errors_carry_the_offset_of_the_field() {
        let mut reader = Reader::from_slice(&[0, 0, 0, 1, 0, 0, 0, 9, b'x']);
        assert_eq!(reader.read_i32(), Ok(1));
        assert_eq!(reader.read_buffer(), Err(DecodeError::Truncated { offset: 4 }));

        let mut reader = Reader::from_slice(&[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(reader.read_buffer(), Err(DecodeError::NegativeLength { offset: 0, len: -2 }));

        let mut reader = Reader::from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(reader.read_string(), Err(DecodeError::NullString { offset: 0 }));

        let mut reader = Reader::from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0xc3]);
        assert_eq!(reader.read_string(), Ok(String::new()));
        assert_eq!(reader.read_string(), Err(DecodeError::InvalidUtf8 { offset: 4 }));
    }

    #[test]
    fn null_id_fields_read_as_zookeeper_judges_them() {
        let id = |scheme: Option<&str>, id: Option<&str>| {
            let mut out = BytesMut::new();
            let mut w = Writer::new(&mut out);
            w.put_buffer(scheme.map(str::as_bytes));
            w.put_buffer(id.map(str::as_bytes));
            let bytes = out.freeze();
            Reader::new(&bytes).read_id()
        };
        // kazoo's CREATOR_ALL_ACL: `auth` with a null id.
        assert_eq!(id(Some("auth"), None), Ok(Id::new("auth", "")));
        assert_eq!(id(None, Some("anyone")), Ok(Id::new("", "anyone")));
        assert_eq!(id(None, None), Ok(Id::new("", "")));
        assert_eq!(id(Some("sasl"), None), Ok(Id::new("sasl", "")));
        for scheme in ["world", "digest", "ip"] {
            let offset = 4 + scheme.len();
            assert_eq!(id(Some(scheme), None), Err(DecodeError::NullString { offset }), "{scheme}");
        }
    }

    #[test]
    fn a_huge_count_fails_before_allocating() {
        let mut reader = Reader::from_slice(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert_eq!(reader.read_string_vec(), Err(DecodeError::Truncated { offset: 0 }));
        let mut reader = Reader::from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(reader.read_acl_vec(), Ok(Vec::new()));
        let mut reader = Reader::from_slice(&[0x80, 0, 0, 0]);
        assert_eq!(
            reader.read_acl_vec(),
            Err(DecodeError::NegativeLength { offset: 0, len: i32::MIN })
        );
    }

    #[test]
    fn a_short_stat_is_truncated_at_its_start() {
        let mut reader = Reader::from_slice(&[0; STAT_LEN - 1]);
        assert_eq!(reader.read_stat(), Err(DecodeError::Truncated { offset: 0 }));
    }

    pub(crate) fn arb_stat() -> impl Strategy<Value = Stat> {
        (
            (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
            (any::<i32>(), any::<i32>(), any::<i32>(), any::<i64>()),
            (any::<i32>(), any::<i32>(), any::<i64>()),
        )
            .prop_map(
                |((czxid, mzxid, ctime, mtime), (version, cversion, aversion, owner), tail)| Stat {
                    czxid,
                    mzxid,
                    ctime,
                    mtime,
                    version,
                    cversion,
                    aversion,
                    ephemeral_owner: owner,
                    data_length: tail.0,
                    num_children: tail.1,
                    pzxid: tail.2,
                },
            )
    }

    proptest! {
        #[test]
        fn records_round_trip(
            stat in arb_stat(),
            acl in proptest::collection::vec(
                (any::<i32>(), ".{0,8}", ".{0,8}")
                    .prop_map(|(perms, scheme, id)| Acl { perms, id: Id { scheme, id } }),
                0..4,
            ),
            names in proptest::collection::vec(".{0,12}", 0..5),
            data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
        ) {
            let bytes = encode(|w| {
                w.put_stat(&stat);
                w.put_acl_vec(&acl);
                w.put_string_vec(&names);
                w.put_buffer(data.as_deref());
            });
            let expected_len =
                STAT_LEN + acl_vec_len(&acl) + string_vec_len(&names) + buffer_len(data.as_deref());
            prop_assert_eq!(bytes.len(), expected_len);

            let mut reader = Reader::new(&bytes);
            prop_assert_eq!(reader.read_stat()?, stat);
            prop_assert_eq!(reader.read_acl_vec()?, acl);
            prop_assert_eq!(reader.read_string_vec()?, names);
            prop_assert_eq!(reader.read_buffer()?.map(|b| b.to_vec()), data);
            prop_assert_eq!(reader.remaining(), 0);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let bytes = Bytes::from(bytes);
            // Start every kind of read at every offset; a read either stays inside the input
            // or fails at a field that starts inside it (or right at its end).
            for start in 0..=bytes.len() {
                let tail = bytes.slice(start..);
                let len = tail.len();
                let check = |offset: usize, error: Option<DecodeError>| -> Result<(), TestCaseError> {
                    prop_assert!(offset <= len);
                    if let Some(error) = error {
                        let (DecodeError::Truncated { offset }
                        | DecodeError::NegativeLength { offset, .. }
                        | DecodeError::NullString { offset }
                        | DecodeError::InvalidUtf8 { offset }
                        | DecodeError::Invalid { offset, .. }) = error;
                        prop_assert!(offset <= len);
                    }
                    Ok(())
                };
                let mut r = Reader::new(&tail);
                let error = r.read_acl_vec().err();
                check(r.offset(), error)?;
                let mut r = Reader::new(&tail);
                let error = r.read_string_vec().err();
                check(r.offset(), error)?;
                let mut r = Reader::from_slice(&tail);
                let error = r.read_buffer().err();
                check(r.offset(), error)?;
                let mut r = Reader::new(&tail);
                let error = r.read_stat().err();
                check(r.offset(), error)?;
                let mut r = Reader::new(&tail);
                let error = r.read_i64().err();
                check(r.offset(), error)?;
            }
        }
    }
}
