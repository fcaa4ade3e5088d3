//! Java `.properties` syntax and Java number syntax, as ZooKeeper reads `zoo.cfg`.
//!
//! ZK compat: `QuorumPeerConfig.parse` hands the file to `java.util.Properties.load`, then trims
//! every key and value with `String.trim`. This module reproduces that reader:
//!
//! - natural lines end at `\n`, `\r` or `\r\n`;
//! - leading spaces, tabs and form feeds are skipped; blank lines are ignored;
//! - a line whose first non-blank character is `#` or `!` is a comment (a comment is never
//!   continued by a trailing backslash);
//! - a line ending in an odd number of backslashes continues on the next line, whose leading
//!   blanks are dropped;
//! - the key ends at the first unescaped `=`, `:` or blank; blanks and at most one `=`/`:`
//!   after it are skipped; the rest of the line is the value;
//! - escapes `\t \n \r \f \uXXXX` and `\<any>` (= that character) apply to keys and values;
//! - a key given twice keeps its last value (`Properties` is a hash table).
//!
//! One deviation: Java decodes the file as ISO-8859-1; we take UTF-8 text, so non-ASCII values
//! read as what the operator typed instead of mojibake.

use std::collections::BTreeMap;

/// One `key=value` entry after unescaping and trimming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Property {
    /// The key, trimmed.
    pub key: String,
    /// The value, trimmed.
    pub value: String,
    /// 1-based number of the natural line where the logical line starts.
    pub line: usize,
}

/// A `\uXXXX` escape without four hex digits (Java: "Malformed \uxxxx encoding.").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MalformedEscape {
    /// Line of the logical line that holds the escape.
    pub line: usize,
}

/// Parses properties text. The result keeps, for each key, its last occurrence, ordered by
/// the line of that occurrence.
pub(crate) fn parse(text: &str) -> Result<Vec<Property>, MalformedEscape> {
    let natural = natural_lines(text);
    let mut by_key: BTreeMap<String, Property> = BTreeMap::new();
    let mut index = 0;
    while index < natural.len() {
        let (line, raw) = natural[index];
        index += 1;
        let start = raw.trim_start_matches(is_blank);
        if start.is_empty() || start.starts_with('#') || start.starts_with('!') {
            continue;
        }
        let mut logical = String::from(start);
        while trailing_backslashes(&logical) % 2 == 1 {
            logical.pop();
            let Some(&(_, next)) = natural.get(index) else {
                break;
            };
            index += 1;
            logical.push_str(next.trim_start_matches(is_blank));
        }
        let (raw_key, raw_value) = split_key_value(&logical);
        let key = unescape(raw_key).ok_or(MalformedEscape { line })?;
        let value = unescape(raw_value).ok_or(MalformedEscape { line })?;
        let key = java_trim(&key).to_string();
        let value = java_trim(&value).to_string();
        by_key.insert(key.clone(), Property { key, value, line });
    }
    let mut properties: Vec<Property> = by_key.into_values().collect();
    properties.sort_by_key(|property| property.line);
    Ok(properties)
}

/// Java `String.trim`: strips every char `<= U+0020` from both ends.
pub(crate) fn java_trim(text: &str) -> &str {
    text.trim_matches(|c: char| c <= ' ')
}

/// Java `Integer.parseInt` (radix 10): optional sign, ASCII digits, 32-bit range.
pub(crate) fn parse_int(text: &str) -> Option<i32> {
    let (negative, digits) = split_sign(text);
    let magnitude = parse_digits(digits, 10)?;
    signed_i32(negative, magnitude)
}

/// Java `Long.parseLong` (radix 10).
pub(crate) fn parse_long(text: &str) -> Option<i64> {
    let (negative, digits) = split_sign(text);
    let magnitude = parse_digits(digits, 10)?;
    signed_i64(negative, magnitude)
}

/// Java `Integer.decode`, used by `Integer.getInteger` for system properties: optional sign,
/// then `0x`/`0X`/`#` for hex, a leading `0` for octal, else decimal.
pub(crate) fn decode_int(text: &str) -> Option<i32> {
    let (negative, magnitude) = decode_magnitude(text)?;
    signed_i32(negative, magnitude)
}

/// Java `Long.decode`, used by `Long.getLong`.
pub(crate) fn decode_long(text: &str) -> Option<i64> {
    let (negative, magnitude) = decode_magnitude(text)?;
    signed_i64(negative, magnitude)
}

fn natural_lines(text: &str) -> Vec<(usize, &str)> {
    let mut lines = Vec::new();
    let mut rest = text;
    let mut number = 1;
    while !rest.is_empty() {
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        lines.push((number, &rest[..end]));
        number += 1;
        rest = &rest[end..];
        if rest.starts_with("\r\n") {
            rest = &rest[2..];
        } else if !rest.is_empty() {
            rest = &rest[1..];
        }
    }
    lines
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

fn trailing_backslashes(text: &str) -> usize {
    text.chars().rev().take_while(|&c| c == '\\').count()
}

/// Splits a logical line like `Properties.load0`: the key ends at the first unescaped
/// separator; blanks and one `=`/`:` that follow are skipped.
fn split_key_value(logical: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = logical.len();
    let mut has_separator = false;
    for (at, c) in logical.char_indices() {
        if !escaped && (c == '=' || c == ':' || is_blank(c)) {
            key_end = at;
            has_separator = c == '=' || c == ':';
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    let key = &logical[..key_end];
    let mut value = logical[key_end..].chars();
    if key_end < logical.len() {
        value.next();
    }
    let mut value = value.as_str();
    while let Some(c) = value.chars().next() {
        if is_blank(c) {
            value = &value[c.len_utf8()..];
        } else if !has_separator && (c == '=' || c == ':') {
            has_separator = true;
            value = &value[1..];
        } else {
            break;
        }
    }
    (key, value)
}

/// `Properties.loadConvert`. `None` on a malformed `\uXXXX`. UTF-16 surrogate pairs written as
/// two escapes are joined; a lone surrogate becomes U+FFFD.
fn unescape(raw: &str) -> Option<String> {
    let mut units: Vec<u16> = Vec::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        let plain = if c != '\\' {
            c
        } else {
            match chars.next() {
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    if hex.len() != 4 || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
                        return None;
                    }
                    units.push(u16::from_str_radix(&hex, 16).ok()?);
                    continue;
                }
                Some('t') => '\t',
                Some('n') => '\n',
                Some('r') => '\r',
                Some('f') => '\u{c}',
                Some(other) => other,
                // Unreachable from `parse` (an odd trailing backslash continues the line), but
                // Java drops it too.
                None => break,
            }
        };
        let mut buffer = [0u16; 2];
        units.extend_from_slice(plain.encode_utf16(&mut buffer));
    }
    Some(char::decode_utf16(units).map(|unit| unit.unwrap_or('\u{fffd}')).collect())
}

fn split_sign(text: &str) -> (bool, &str) {
    if let Some(rest) = text.strip_prefix('-') {
        (true, rest)
    } else {
        (false, text.strip_prefix('+').unwrap_or(text))
    }
}

/// A non-empty run of digits of `radix` as an unsigned magnitude (no sign allowed).
fn parse_digits(digits: &str, radix: u32) -> Option<u64> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

fn decode_magnitude(text: &str) -> Option<(bool, u64)> {
    let (negative, body) = split_sign(text);
    let magnitude = if let Some(hex) = body
        .strip_prefix("0x")
        .or_else(|| body.strip_prefix("0X"))
        .or_else(|| body.strip_prefix('#'))
    {
        parse_digits(hex, 16)?
    } else if body.len() > 1 && body.starts_with('0') {
        parse_digits(&body[1..], 8)?
    } else {
        parse_digits(body, 10)?
    };
    Some((negative, magnitude))
}

fn signed_i32(negative: bool, magnitude: u64) -> Option<i32> {
    let value = signed_i64(negative, magnitude)?;
    i32::try_from(value).ok()
}

fn signed_i64(negative: bool, magnitude: u64) -> Option<i64> {
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pairs(text: &str) -> Vec<(String, String, usize)> {
        parse(text).expect("well-formed").into_iter().map(|p| (p.key, p.value, p.line)).collect()
    }

    fn one(text: &str) -> (String, String) {
        let all = pairs(text);
        assert_eq!(all.len(), 1, "{all:?}");
        (all[0].0.clone(), all[0].1.clone())
    }

    #[test]
    fn separators_equals_colon_and_blank() {
        assert_eq!(one("tickTime=2000"), ("tickTime".into(), "2000".into()));
        assert_eq!(one("tickTime: 2000"), ("tickTime".into(), "2000".into()));
        assert_eq!(one("tickTime 2000"), ("tickTime".into(), "2000".into()));
        assert_eq!(one("  tickTime \t =  2000  "), ("tickTime".into(), "2000".into()));
        // Only one separator is swallowed: the second `=` belongs to the value.
        assert_eq!(one("a = = b"), ("a".into(), "= b".into()));
        assert_eq!(one("a b=c"), ("a".into(), "b=c".into()));
        assert_eq!(one("a"), ("a".into(), "".into()));
        assert_eq!(one("a="), ("a".into(), "".into()));
        assert_eq!(one("=v"), ("".into(), "v".into()));
    }

    #[test]
    fn comments_and_blank_lines() {
        let text = "# comment\n! also comment\n\n   \n  # indented comment\nk=v # not a comment\n";
        assert_eq!(pairs(text), vec![("k".into(), "v # not a comment".into(), 6)]);
    }

    #[test]
    fn continuation_lines() {
        let text = "server.1=zk1:2888:\\\n      3888\nnext=1\n";
        assert_eq!(
            pairs(text),
            vec![("server.1".into(), "zk1:2888:3888".into(), 1), ("next".into(), "1".into(), 3)]
        );
        // Two backslashes are an escaped backslash, not a continuation.
        assert_eq!(
            pairs("a=x\\\\\nb=y"),
            vec![("a".into(), "x\\".into(), 1), ("b".into(), "y".into(), 2)]
        );
        // An empty continuation line ends the logical line.
        assert_eq!(
            pairs("a=x\\\n\nb=y"),
            vec![("a".into(), "x".into(), 1), ("b".into(), "y".into(), 3)]
        );
        // A trailing backslash at end of input is dropped.
        assert_eq!(one("a=x\\"), ("a".into(), "x".into()));
        // A continued line is never a comment, even if it starts with '#'.
        assert_eq!(one("a=x\\\n  #y"), ("a".into(), "x#y".into()));
        // A comment is not continued.
        assert_eq!(one("# c \\\na=1"), ("a".into(), "1".into()));
    }

    #[test]
    fn line_endings() {
        assert_eq!(
            pairs("a=1\r\nb=2\rc=3\n"),
            vec![
                ("a".into(), "1".into(), 1),
                ("b".into(), "2".into(), 2),
                ("c".into(), "3".into(), 3)
            ]
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(one("a\\=b=c"), ("a=b".into(), "c".into()));
        assert_eq!(one("a\\ b c"), ("a b".into(), "c".into()));
        assert_eq!(one("k=\\u0041\\t\\q"), ("k".into(), "A\tq".into()));
        assert_eq!(one("k=\\uD83D\\uDE00"), ("k".into(), "\u{1F600}".into()));
        assert_eq!(one("k=\\uD83D"), ("k".into(), "\u{fffd}".into()));
        assert_eq!(parse("a=1\nk=\\u12"), Err(MalformedEscape { line: 2 }));
        assert_eq!(parse("k=\\uzzzz"), Err(MalformedEscape { line: 1 }));
    }

    #[test]
    fn later_duplicates_win_and_keep_their_line() {
        assert_eq!(
            pairs("a=1\nb=2\na=3\n"),
            vec![("b".into(), "2".into(), 2), ("a".into(), "3".into(), 3)]
        );
    }

    #[test]
    fn java_trim_strips_control_characters() {
        assert_eq!(one("k=v\u{1}\u{0}"), ("k".into(), "v".into()));
    }

    #[test]
    fn java_integers() {
        assert_eq!(parse_int("2000"), Some(2000));
        assert_eq!(parse_int("+7"), Some(7));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("2147483647"), Some(i32::MAX));
        assert_eq!(parse_int("-2147483648"), Some(i32::MIN));
        assert_eq!(parse_int("2147483648"), None);
        for bad in ["", "-", "+", "1.5", "0x10", " 1", "1_000", "--1"] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
        assert_eq!(parse_long("9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_long("-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn java_decode() {
        assert_eq!(decode_int("0x10"), Some(16));
        assert_eq!(decode_int("0X1f"), Some(31));
        assert_eq!(decode_int("#ff"), Some(255));
        assert_eq!(decode_int("010"), Some(8));
        assert_eq!(decode_int("0"), Some(0));
        assert_eq!(decode_int("-0x10"), Some(-16));
        assert_eq!(decode_int("09"), None);
        assert_eq!(decode_int("0x"), None);
        assert_eq!(decode_long("0x7fffffffffffffff"), Some(i64::MAX));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = parse(&text);
        }

        #[test]
        fn escaped_values_round_trip(key in "[A-Za-z][A-Za-z0-9._]{0,20}", value in any::<String>()) {
            let escaped: String = value.chars().map(|c| match c {
                '\\' => "\\\\".to_string(),
                '\n' => "\\n".to_string(),
                '\r' => "\\r".to_string(),
                c => c.to_string(),
            }).collect();
            let parsed = parse(&format!("{key}={escaped}\n")).expect("escaped text is well-formed");
            prop_assert_eq!(parsed.len(), 1);
            prop_assert_eq!(&parsed[0].value, java_trim(&value));
        }
    }
}
