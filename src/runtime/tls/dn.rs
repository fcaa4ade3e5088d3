//! A certificate's subject as Java's `X500Principal.getName()` prints it (RFC 2253), which is
//! the id ZooKeeper's `X509AuthenticationProvider` gives a client.
//!
//! ZK compat (`sun.security.x509.AVA.toRFC2253String`): RDNs last-encoded first, joined by `,`;
//! the attributes of a multi-valued RDN joined by `+`; the RFC 2253 keywords (CN, C, L, ST, O,
//! OU, STREET, DC, UID) by name and every other type as its dotted OID with the value as `#`
//! and the hex of its DER encoding (so emailAddress prints as `1.2.840.113549.1.9.1=#16...`);
//! string values with `,=+<>#;"\` escaped by a backslash, and leading and trailing spaces too.

use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// The subject DN of a DER certificate, or `None` if it does not parse.
pub fn subject_dn(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    Some(rfc2253(cert.subject()))
}

/// A name in RFC 2253 form, as Java prints it.
pub fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> =
        name.iter().map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join("+")).collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn attribute(atv: &AttributeTypeAndValue<'_>) -> String {
    let oid = atv.attr_type().to_id_string();
    let value = atv.attr_value();
    let text = match keyword(&oid) {
        Some(_) => string_value(value.header.tag().0, value.data),
        None => None,
    };
    match (keyword(&oid), text) {
        (Some(name), Some(text)) => format!("{name}={}", escape(&text)),
        (name, _) => {
            let name = name.map_or(oid.clone(), str::to_string);
            format!(
                "{name}=#{}",
                hex_der(value.header.tag().0, value.header.is_constructed(), value.data)
            )
        }
    }
}

/// The text of a directory string, for the types Java prints as text (`isDerString`).
fn string_value(tag: u32, data: &[u8]) -> Option<String> {
    match tag {
        // PrintableString, IA5String, UTF8String.
        19 | 22 | 12 => Some(String::from_utf8_lossy(data).into_owned()),
        // TeletexString (T61) and GeneralString: Java reads them as ISO-8859-1.
        20 | 27 => Some(data.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE.
        30 => {
            let units: Vec<u16> = data
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

fn escape(value: &str) -> String {
    let mut chars = Vec::with_capacity(value.len());
    for c in value.chars() {
        if c == '\0' {
            chars.extend(['\\', '0', '0']);
            continue;
        }
        if ",=+<>#;\"\\".contains(c) {
            chars.push('\\');
        }
        chars.push(c);
    }
    // Leading and trailing blanks (space, CR) are escaped one by one.
    let blank = |c: &char| *c == ' ' || *c == '\r';
    let lead = chars.iter().take_while(|c| blank(c)).count();
    let trail = chars.len() - chars.iter().rev().take_while(|c| blank(c)).count();
    let mut out = String::with_capacity(chars.len() + 4);
    for (i, c) in chars.into_iter().enumerate() {
        if i < lead || i >= trail {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `#` + hex of the value's DER encoding (a universal tag, as directory values are).
fn hex_der(tag: u32, constructed: bool, data: &[u8]) -> String {
    let mut der = Vec::with_capacity(data.len() + 6);
    der.push(u8::try_from(tag).unwrap_or(0x1f) | if constructed { 0x20 } else { 0 });
    let len = data.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        der.push(0x80 | (bytes.len() - skip) as u8);
        der.extend_from_slice(&bytes[skip..]);
    }
    der.extend_from_slice(data);
    der.iter().map(|b| format!("{b:02x}")).collect()
}
