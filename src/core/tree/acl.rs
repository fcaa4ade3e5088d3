//! ACL checks and schemes. OWNER: tree helper. Stub.
#![allow(missing_docs)]
use crate::wire::types::{Acl, ErrorCode, Id};
pub fn check(_acl: &[Acl], _needed: i32, _ids: &[Id], _skip: bool) -> bool {
    todo!()
}
pub fn fixup(_acl: &[Acl], _ids: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    todo!()
}
pub fn parse_digest_auth(_auth: &[u8]) -> Option<Id> {
    todo!()
}
pub fn mask_digests(_acl: &[Acl]) -> Vec<Acl> {
    todo!()
}
