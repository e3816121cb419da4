//! A client certificate's subject, written as Kafka names the principal of an SSL
//! connection: `X500Principal.getName()`, the RFC 2253 form Java prints, such as
//! `CN=client,OU=Unit,O=Org,C=US`.
//!
//! ACLs are written against these strings, so they must match Java's byte for byte: the
//! relative names in reverse order of the certificate's encoding, joined by `,` (and the
//! values of a multi-valued one by `+`, in encoded order); the keywords Java emits in this
//! form (CN, C, L, ST, O, OU, STREET, DC, UID) by name and every other attribute as its
//! dotted OID with `#` and the hex of its DER value (so `emailAddress` is
//! `1.2.840.113549.1.9.1=#16...`); `,=+<>#;"\` escaped with a backslash, as are leading
//! and trailing spaces; a NUL as `\00`.
//!
//! The certificate has already been verified by rustls, but its bytes still come from the
//! network: this parser reads only the DER it needs (up to the subject), checks every
//! length, and fails with [`SubjectError`] rather than panic.

use std::fmt::Write as _;

/// Why a certificate's subject could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the client certificate's subject: {0}")]
pub struct SubjectError(&'static str);

/// DER tags this parser meets.
mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const OBJECT_IDENTIFIER: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const T61_STRING: u8 = 0x14;
    pub const IA5_STRING: u8 = 0x16;
    pub const GENERAL_STRING: u8 = 0x1b;
    pub const BMP_STRING: u8 = 0x1e;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    /// `[0] EXPLICIT`: the certificate's version.
    pub const CONTEXT_0: u8 = 0xa0;
}

/// The attribute types Java writes by keyword in RFC 2253 form, by their OID's DER bytes.
const KEYWORDS: [(&[u8], &str); 9] = [
    (&[0x55, 0x04, 0x03], "CN"),
    (&[0x55, 0x04, 0x06], "C"),
    (&[0x55, 0x04, 0x07], "L"),
    (&[0x55, 0x04, 0x08], "ST"),
    (&[0x55, 0x04, 0x09], "STREET"),
    (&[0x55, 0x04, 0x0a], "O"),
    (&[0x55, 0x04, 0x0b], "OU"),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
        "DC",
    ),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01],
        "UID",
    ),
];

/// Characters Java escapes with a backslash anywhere in a value.
const ESCAPED: &str = ",=+<>#;\"\\";

/// The subject of a DER certificate in RFC 2253 form, as Java's
/// `X500Principal.getName()` writes it.
///
/// # Errors
/// When the DER is malformed up to and including the subject.
pub fn subject_name(certificate_der: &[u8]) -> Result<String, SubjectError> {
    let mut certificate = Der(certificate_der);
    let mut certificate = Der(certificate.expect(tag::SEQUENCE, "certificate")?);
    let mut tbs = Der(certificate.expect(tag::SEQUENCE, "tbsCertificate")?);
    if tbs.peek_tag() == Some(tag::CONTEXT_0) {
        tbs.expect(tag::CONTEXT_0, "version")?;
    }
    tbs.expect(tag::INTEGER, "serial number")?;
    tbs.expect(tag::SEQUENCE, "signature algorithm")?;
    tbs.expect(tag::SEQUENCE, "issuer")?;
    tbs.expect(tag::SEQUENCE, "validity")?;
    let subject = tbs.expect(tag::SEQUENCE, "subject")?;
    name_to_rfc2253(subject)
}

/// An X.501 `Name` (the content of its SEQUENCE) in RFC 2253 form.
fn name_to_rfc2253(name: &[u8]) -> Result<String, SubjectError> {
    let mut relative_names = Vec::new();
    let mut name = Der(name);
    while !name.is_empty() {
        let mut set = Der(name.expect(tag::SET, "relative distinguished name")?);
        let mut attributes = Vec::new();
        while !set.is_empty() {
            let mut attribute = Der(set.expect(tag::SEQUENCE, "attribute")?);
            let oid = attribute.expect(tag::OBJECT_IDENTIFIER, "attribute type")?;
            let (value_tag, value, value_der) = attribute.next("attribute value")?;
            attributes.push(attribute_to_rfc2253(oid, value_tag, value, value_der)?);
        }
        relative_names.push(attributes.join("+"));
    }
    relative_names.reverse();
    Ok(relative_names.join(","))
}

/// `TYPE=value`: a keyword and the escaped string when Java has both, else the dotted
/// OID and `#` with the value's DER in hex.
fn attribute_to_rfc2253(
    oid: &[u8],
    value_tag: u8,
    value: &[u8],
    value_der: &[u8],
) -> Result<String, SubjectError> {
    let keyword = KEYWORDS
        .iter()
        .find(|(known, _)| *known == oid)
        .map(|(_, keyword)| *keyword);
    let text = decode_string(value_tag, value);
    match (keyword, text) {
        (Some(keyword), Some(text)) => Ok(format!("{keyword}={}", escape(&text))),
        (keyword, _) => {
            let name = match keyword {
                Some(keyword) => keyword.to_string(),
                None => dotted_oid(oid)?,
            };
            let mut hex = String::with_capacity(value_der.len() * 2);
            for byte in value_der {
                let _ = write!(hex, "{byte:02x}");
            }
            Ok(format!("{name}=#{hex}"))
        }
    }
}

/// The text of a directory string, for the string types Java prints as text.
fn decode_string(value_tag: u8, value: &[u8]) -> Option<String> {
    match value_tag {
        tag::UTF8_STRING => Some(String::from_utf8_lossy(value).into_owned()),
        tag::PRINTABLE_STRING | tag::IA5_STRING | tag::T61_STRING | tag::GENERAL_STRING => {
            Some(value.iter().map(|byte| char::from(*byte)).collect())
        }
        tag::BMP_STRING => {
            let units: Vec<u16> = value
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

/// Java's escaping: a backslash before `,=+<>#;"\`, `\00` for NUL, and a backslash
/// before each leading and trailing space.
fn escape(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let lead = chars.iter().take_while(|c| **c == ' ').count();
    let trail_start = chars.len() - chars.iter().rev().take_while(|c| **c == ' ').count();
    let mut escaped = String::with_capacity(text.len() + 4);
    for (index, c) in chars.iter().enumerate() {
        if ESCAPED.contains(*c) || (*c == ' ' && (index < lead || index >= trail_start)) {
            escaped.push('\\');
            escaped.push(*c);
        } else if *c == '\0' {
            escaped.push_str("\\00");
        } else {
            escaped.push(*c);
        }
    }
    escaped
}

/// An OID's DER content as dotted decimal.
fn dotted_oid(oid: &[u8]) -> Result<String, SubjectError> {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for byte in oid {
        value = value
            .checked_mul(128)
            .map(|shifted| shifted | u64::from(byte & 0x7f))
            .ok_or(SubjectError("an OID arc is too large"))?;
        if byte & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    let Some(first) = arcs.first().copied() else {
        return Err(SubjectError("an empty OID"));
    };
    if oid.last().is_some_and(|byte| byte & 0x80 != 0) {
        return Err(SubjectError("a truncated OID"));
    }
    let (x, y) = match first {
        0..40 => (0, first),
        40..80 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut dotted = format!("{x}.{y}");
    for arc in &arcs[1..] {
        let _ = write!(dotted, ".{arc}");
    }
    Ok(dotted)
}

/// A cursor over DER bytes.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// The next element's content, which must carry `expected_tag`.
    fn expect(&mut self, expected_tag: u8, what: &'static str) -> Result<&'a [u8], SubjectError> {
        let (found, content, _) = self.next(what)?;
        if found != expected_tag {
            return Err(SubjectError(what));
        }
        Ok(content)
    }

    /// The next element: its tag, its content, and its whole encoding.
    fn next(&mut self, what: &'static str) -> Result<(u8, &'a [u8], &'a [u8]), SubjectError> {
        let bytes = self.0;
        let (&tag, rest) = bytes.split_first().ok_or(SubjectError(what))?;
        if tag & 0x1f == 0x1f {
            return Err(SubjectError("a high tag number"));
        }
        let (&first, rest) = rest.split_first().ok_or(SubjectError(what))?;
        let (length, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return Err(SubjectError("a bad length"));
            }
            let (length_bytes, rest) = rest.split_at(count);
            let length = length_bytes
                .iter()
                .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
            (length, rest)
        };
        if rest.len() < length {
            return Err(SubjectError(what));
        }
        let (content, remaining) = rest.split_at(length);
        let header_bytes = bytes.len() - rest.len();
        self.0 = remaining;
        Ok((tag, content, &bytes[..header_bytes + length]))
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair};

    use super::*;

    /// A self-signed certificate's DER with `subject`, attributes in the order given.
    fn certificate_with(subject: &[(DnType, DnValue)]) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        let mut name = DistinguishedName::new();
        for (kind, value) in subject {
            name.push(kind.clone(), value.clone());
        }
        params.distinguished_name = name;
        let key = KeyPair::generate().expect("key");
        params.self_signed(&key).expect("sign").der().to_vec()
    }

    fn utf8(text: &str) -> DnValue {
        DnValue::Utf8String(text.into())
    }

    #[test]
    fn subjects_print_as_java_prints_them() {
        // Proves the order is reversed, keywords are Java's, and values are escaped as
        // X500Principal.getName() does (expected strings checked against Java 17).
        let der = certificate_with(&[
            (
                DnType::CountryName,
                DnValue::PrintableString("US".try_into().unwrap()),
            ),
            (DnType::OrganizationName, utf8("Org")),
            (DnType::OrganizationalUnitName, utf8("Unit")),
            (DnType::CommonName, utf8("client")),
        ]);
        assert_eq!(subject_name(&der).unwrap(), "CN=client,OU=Unit,O=Org,C=US");
        let der = certificate_with(&[
            (DnType::LocalityName, utf8(" Lyon, France ")),
            (DnType::CommonName, utf8("a+b=c#<d>;\"e\\")),
        ]);
        assert_eq!(
            subject_name(&der).unwrap(),
            r#"CN=a\+b\=c\#\<d\>\;\"e\\,L=\ Lyon\, France\ "#
        );
    }

    #[test]
    fn attributes_without_a_keyword_print_as_oid_and_hex() {
        // Proves an attribute Java has no RFC 2253 keyword for (here emailAddress) is
        // written as its dotted OID and the DER of its value.
        let email = DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]);
        let der = certificate_with(&[
            (email, DnValue::Ia5String("a@b".try_into().unwrap())),
            (DnType::CommonName, utf8("x")),
        ]);
        assert_eq!(
            subject_name(&der).unwrap(),
            "CN=x,1.2.840.113549.1.9.1=#1603614062"
        );
    }

    #[test]
    fn malformed_certificates_are_errors() {
        // Proves truncated or mislabelled DER is an error at every cut, never a panic.
        let der = certificate_with(&[(DnType::CommonName, utf8("client"))]);
        for cut in 0..der.len() / 2 {
            assert!(subject_name(&der[..cut]).is_err(), "cut at {cut}");
        }
        let mut relabelled = der.clone();
        relabelled[0] = tag::SET;
        assert!(subject_name(&relabelled).is_err());
        assert!(subject_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert_eq!(
            dotted_oid(&[0x2a, 0x86]),
            Err(SubjectError("a truncated OID"))
        );
    }
}
