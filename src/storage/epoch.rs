//! The `acceptedEpoch` and `currentEpoch` files: one decimal number.
//!
//! We write the number followed by a newline. We read what we write and what ZooKeeper writes
//! (the number alone): ASCII digits, at most one trailing `\n`, a value that fits in 32 bits
//! (an epoch is the high half of a zxid). Anything else is an error, never a guess.
//!
//! ZK compat: `QuorumPeer.writeLongToFile` / `readLongFromFile`.

use thiserror::Error;

/// An epoch file that does not hold an epoch.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EpochError {
    /// The file is empty.
    #[error("epoch file is empty")]
    Empty,
    /// A byte other than a decimal digit (or the final newline).
    #[error("epoch file holds a non-digit byte {byte:#04x} at offset {offset}")]
    NotDecimal {
        /// The offending byte.
        byte: u8,
        /// Where it is.
        offset: usize,
    },
    /// More than a 32-bit epoch.
    #[error("epoch file holds a number larger than a 32-bit epoch")]
    TooLarge,
}

/// The contents of an epoch file holding `epoch`.
pub fn encode_epoch(epoch: u32) -> Vec<u8> {
    format!("{epoch}\n").into_bytes()
}

/// The epoch an epoch file holds.
pub fn decode_epoch(bytes: &[u8]) -> Result<u32, EpochError> {
    let digits = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if digits.is_empty() {
        return Err(EpochError::Empty);
    }
    let mut value: u32 = 0;
    for (offset, &byte) in digits.iter().enumerate() {
        if !byte.is_ascii_digit() {
            return Err(EpochError::NotDecimal { byte, offset });
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u32::from(byte - b'0')))
            .ok_or(EpochError::TooLarge)?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_zookeeper_files_and_ours() {
        assert_eq!(decode_epoch(b"7"), Ok(7));
        assert_eq!(decode_epoch(b"7\n"), Ok(7));
        assert_eq!(decode_epoch(b"4294967295"), Ok(u32::MAX));
    }

    #[test]
    fn rejects_anything_else() {
        assert_eq!(decode_epoch(b""), Err(EpochError::Empty));
        assert_eq!(decode_epoch(b"\n"), Err(EpochError::Empty));
        assert_eq!(decode_epoch(b"4294967296"), Err(EpochError::TooLarge));
        assert_eq!(decode_epoch(b"-1"), Err(EpochError::NotDecimal { byte: b'-', offset: 0 }));
        assert_eq!(decode_epoch(b"1 "), Err(EpochError::NotDecimal { byte: b' ', offset: 1 }));
        assert_eq!(decode_epoch(b"1\n\n"), Err(EpochError::NotDecimal { byte: b'\n', offset: 1 }));
        assert_eq!(decode_epoch(b"\x001"), Err(EpochError::NotDecimal { byte: 0, offset: 0 }));
    }

    proptest! {
        #[test]
        fn round_trips(epoch: u32) {
            prop_assert_eq!(decode_epoch(&encode_epoch(epoch)), Ok(epoch));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            if let Ok(epoch) = decode_epoch(&bytes) {
                // Whatever is accepted is a plain decimal rendering (leading zeros allowed).
                let text = std::str::from_utf8(&bytes).expect("digits are ASCII");
                prop_assert_eq!(text.trim_end_matches('\n').parse::<u32>(), Ok(epoch));
            }
        }
    }
}
