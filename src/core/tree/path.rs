//! Path validation and helpers. OWNER: tree helper. Stub.
#![allow(missing_docs)]
pub fn validate_path(_path: &str) -> Result<(), String> {
    todo!()
}
pub fn sequence_suffix(_n: i32) -> String {
    todo!()
}
