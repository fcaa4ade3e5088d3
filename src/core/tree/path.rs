//! Znode paths: validation, parent and name, ancestors, sequence suffixes, built-in nodes.
//!
//! ZK compat: `org.apache.zookeeper.common.PathUtils.validatePath` (protocol reference §10.2) and
//! the path arithmetic of `DataTree` (`lastIndexOf('/')`). Java checks UTF-16 code units; a Rust
//! `str` holds scalar values, so every character outside the Basic Multilingual Plane (which Java
//! sees as a surrogate pair, U+D800..U+DFFF) is rejected, and positions in errors count `char`s.

use thiserror::Error;

/// The root.
pub const ROOT: &str = "/";
/// ZooKeeper's own subtree. ZK compat: `Quotas.procZookeeper`.
pub const ZOOKEEPER: &str = "/zookeeper";
/// Quota subtree. ZK compat: `Quotas.quotaZookeeper`.
pub const QUOTA: &str = "/zookeeper/quota";
/// Dynamic configuration node. ZK compat: `ZooDefs.CONFIG_NODE`.
pub const CONFIG: &str = "/zookeeper/config";

/// Why a path is not a valid znode path. Positions count characters from the start.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PathError {
    /// The path is the empty string.
    #[error("path length must be > 0")]
    Empty,
    /// The first character is not `/`.
    #[error("path must start with / character")]
    NotAbsolute,
    /// The path ends with `/` (and is not the root).
    #[error("path must not end with / character")]
    TrailingSlash,
    /// A NUL character.
    #[error("null character not allowed @{at}")]
    NulCharacter {
        /// Position of the character.
        at: usize,
    },
    /// Two consecutive slashes.
    #[error("empty node name specified @{at}")]
    EmptyComponent {
        /// Position of the second slash.
        at: usize,
    },
    /// A component equal to `.` or `..`.
    #[error("relative paths not allowed @{at}")]
    RelativeComponent {
        /// Position of the (last) dot.
        at: usize,
    },
    /// A control, surrogate, private-use or specials character.
    #[error("invalid character @{at}")]
    InvalidCharacter {
        /// Position of the character.
        at: usize,
    },
}

/// Checks `path` as ZooKeeper's `PathUtils.validatePath` does.
pub fn validate_path(path: &str) -> Result<(), PathError> {
    let mut chars = path.chars();
    match chars.next() {
        None => return Err(PathError::Empty),
        Some('/') => {}
        Some(_) => return Err(PathError::NotAbsolute),
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(PathError::TrailingSlash);
    }
    // `prev` and `prev2` are the one and two characters before the current one. `prev2` is
    // only read when `prev` is '.', which cannot happen at position 1, so its start is unused.
    let mut prev = '/';
    let mut prev2 = '/';
    let mut rest = chars.clone().skip(1);
    for (offset, c) in chars.enumerate() {
        let at = offset + 1;
        let next = rest.next();
        let ends_component = matches!(next, None | Some('/'));
        if c == '\0' {
            return Err(PathError::NulCharacter { at });
        }
        if c == '/' && prev == '/' {
            return Err(PathError::EmptyComponent { at });
        }
        if c == '.' && ends_component {
            let dot = prev == '/';
            let dot_dot = prev == '.' && prev2 == '/';
            if dot || dot_dot {
                return Err(PathError::RelativeComponent { at });
            }
        }
        if is_invalid_char(c) {
            return Err(PathError::InvalidCharacter { at });
        }
        prev2 = prev;
        prev = c;
    }
    Ok(())
}

/// The parent of `path`: `/` for `/x` and for `/` itself (so a create of `/` finds a parent and
/// fails with NodeExists, as ZooKeeper's empty-string alias of the root makes it), and `""` for
/// a string without any `/`.
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => ROOT,
        Some(slash) => &path[..slash],
        None => "",
    }
}

/// The last component of `path` (`""` for the root).
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(slash) => &path[slash + 1..],
        None => path,
    }
}

/// The proper ancestors of `path`, nearest first, ending with `/` (none for `/` itself).
pub fn ancestors(path: &str) -> Ancestors<'_> {
    Ancestors { rest: if path.starts_with('/') && path != ROOT { Some(path) } else { None } }
}

/// Iterator returned by [`ancestors`].
#[derive(Clone, Debug)]
pub struct Ancestors<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for Ancestors<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let current = self.rest?;
        let up = parent(current);
        self.rest = if up == ROOT { None } else { Some(up) };
        Some(up)
    }
}

/// The path joined with a child name.
pub fn join(parent: &str, name: &str) -> String {
    let mut path = String::with_capacity(parent.len() + 1 + name.len());
    path.push_str(parent);
    if parent != ROOT {
        path.push('/');
    }
    path.push_str(name);
    path
}

/// The suffix a sequential create appends: the parent's internal cversion as Java's `%010d`
/// formats it (the sign counts toward the width, so -1 is `-000000001`).
pub fn sequence_suffix(counter: i32) -> String {
    format!("{counter:010}")
}

/// Whether `path` is one of the four nodes ZooKeeper creates itself (never deletable).
/// ZK compat: `DataTree.isSpecialPath`.
pub fn is_builtin(path: &str) -> bool {
    matches!(path, ROOT | ZOOKEEPER | QUOTA | CONFIG)
}

/// Whether `c` is in one of the ranges `PathUtils` rejects. Characters above U+FFFF are rejected
/// because Java sees them as surrogates.
fn is_invalid_char(c: char) -> bool {
    matches!(c as u32,
        0x01..=0x1F | 0x7F..=0x9F | 0xD800..=0xF8FF | 0xFFF0..=0xFFFF | 0x1_0000..)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn valid_paths() {
        for path in [
            "/",
            "/a",
            "/a/b",
            "/zookeeper/quota",
            "/a b/c:d",
            "/...",
            "/.a",
            "/a.",
            "/..a",
            "/a..",
            "/a/.../b",
            "/caf\u{e9}",
            "/\u{a0}",
            "/\u{ffef}",
        ] {
            assert_eq!(validate_path(path), Ok(()), "{path:?}");
        }
    }

    #[test]
    fn invalid_paths() {
        use PathError::*;
        let cases = [
            ("", Empty),
            ("a", NotAbsolute),
            ("a/b", NotAbsolute),
            ("/a/", TrailingSlash),
            ("//", TrailingSlash),
            ("//a", EmptyComponent { at: 1 }),
            ("/a//b", EmptyComponent { at: 3 }),
            ("/.", RelativeComponent { at: 1 }),
            ("/..", RelativeComponent { at: 2 }),
            ("/a/./b", RelativeComponent { at: 3 }),
            ("/a/../b", RelativeComponent { at: 4 }),
            ("/a/..", RelativeComponent { at: 4 }),
            ("/a\0", NulCharacter { at: 2 }),
            ("/\u{1}", InvalidCharacter { at: 1 }),
            ("/\u{1f}", InvalidCharacter { at: 1 }),
            ("/\u{7f}", InvalidCharacter { at: 1 }),
            ("/\u{9f}", InvalidCharacter { at: 1 }),
            ("/\u{e000}", InvalidCharacter { at: 1 }),
            ("/\u{f8ff}", InvalidCharacter { at: 1 }),
            ("/\u{fff0}", InvalidCharacter { at: 1 }),
            ("/\u{ffff}", InvalidCharacter { at: 1 }),
            ("/ab\u{1f600}", InvalidCharacter { at: 3 }),
        ];
        for (path, error) in cases {
            assert_eq!(validate_path(path), Err(error), "{path:?}");
        }
    }

    #[test]
    fn parent_and_name() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(parent("/"), "/");
        assert_eq!(parent("abc"), "");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(name("/a"), "a");
        assert_eq!(name("/"), "");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }

    #[test]
    fn ancestors_nearest_first() {
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), ["/a/b", "/a", "/"]);
        assert_eq!(ancestors("/a").collect::<Vec<_>>(), ["/"]);
        assert_eq!(ancestors("/").count(), 0);
        assert_eq!(ancestors("junk").count(), 0);
    }

    #[test]
    fn sequence_suffix_matches_java_format() {
        assert_eq!(sequence_suffix(0), "0000000000");
        assert_eq!(sequence_suffix(7), "0000000007");
        assert_eq!(sequence_suffix(i32::MAX), "2147483647");
        assert_eq!(sequence_suffix(-1), "-000000001");
        assert_eq!(sequence_suffix(-123), "-000000123");
        assert_eq!(sequence_suffix(i32::MIN), "-2147483648");
    }

    #[test]
    fn builtins() {
        assert!(is_builtin("/"));
        assert!(is_builtin("/zookeeper"));
        assert!(is_builtin("/zookeeper/quota"));
        assert!(is_builtin("/zookeeper/config"));
        assert!(!is_builtin("/zookeeper/other"));
        assert!(!is_builtin("/zoo"));
    }

    /// A direct transcription of the Java loop over UTF-16 units, as the reference.
    fn java_reference(path: &str) -> bool {
        let units: Vec<u16> = path.encode_utf16().collect();
        if units.is_empty() || units[0] != u16::from(b'/') {
            return false;
        }
        if units.len() == 1 {
            return true;
        }
        if units[units.len() - 1] == u16::from(b'/') {
            return false;
        }
        let (slash, dot) = (u16::from(b'/'), u16::from(b'.'));
        let mut lastc = slash;
        for i in 1..units.len() {
            let c = units[i];
            let next_ends = i + 1 == units.len() || units[i + 1] == slash;
            if c == 0 || (c == slash && lastc == slash) {
                return false;
            } else if c == dot && lastc == dot {
                if units[i - 2] == slash && next_ends {
                    return false;
                }
            } else if c == dot {
                if units[i - 1] == slash && next_ends {
                    return false;
                }
            } else if (c > 0 && c <= 0x1f)
                || (0x7f..=0x9f).contains(&c)
                || (0xd800..=0xf8ff).contains(&c)
                || c >= 0xfff0
            {
                return false;
            }
            lastc = c;
        }
        true
    }

    proptest! {
        #[test]
        fn agrees_with_java_loop(path in "[/./a\\x00\\x01\u{7f}\u{e000}\u{1f600}é]{0,8}") {
            prop_assert_eq!(validate_path(&path).is_ok(), java_reference(&path), "{:?}", path);
        }

        #[test]
        fn ancestors_are_parents(path in "(/[a-c]{1,2}){1,5}") {
            let mut current = path.as_str();
            for up in ancestors(&path) {
                prop_assert_eq!(up, parent(current));
                prop_assert!(validate_path(up).is_ok());
                current = up;
            }
            prop_assert_eq!(current, "/");
        }
    }
}
