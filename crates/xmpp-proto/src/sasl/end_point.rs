//! RFC 5929 §4: the `tls-server-end-point` channel binding, "the hash of the TLS server's
//! certificate [RFC5280] as it appears, octet for octet, in the server's Certificate message".
//!
//! §4.1 picks the hash from the certificate's `signatureAlgorithm`: MD5 or SHA-1 become
//! SHA-256; any other single hash function is used as is; an algorithm with no hash function
//! or with several (Ed25519, Ed448, RSASSA-PSS whose MGF1 hash differs from its message hash)
//! leaves the binding undefined, and then it is not offered. Only the few DER structures on
//! the way to that algorithm identifier are read, with a small strict reader.

use sha2::Digest as _;

use super::{ChannelBinding, ChannelBindingKind};

/// The hash function RFC 5929 §4.1 selects for a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EndPointHash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl EndPointHash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            EndPointHash::Sha224 => sha2::Sha224::digest(data).to_vec(),
            EndPointHash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            EndPointHash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            EndPointHash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// A hash function named inside a signature algorithm, before the MD5/SHA-1 upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SigHash {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl SigHash {
    /// §4.1: "if the certificate's signatureAlgorithm uses a single hash function, and that
    /// hash function is either MD5 or SHA-1, then use SHA-256".
    fn end_point(self) -> EndPointHash {
        match self {
            SigHash::Md5 | SigHash::Sha1 | SigHash::Sha256 => EndPointHash::Sha256,
            SigHash::Sha224 => EndPointHash::Sha224,
            SigHash::Sha384 => EndPointHash::Sha384,
            SigHash::Sha512 => EndPointHash::Sha512,
        }
    }
}

// Object identifiers, as the content octets of their DER encoding.
/// 1.2.840.113549.1.1.x (PKCS #1): the last octet tells the algorithm.
const PKCS1_PREFIX: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
/// 1.2.840.10045.4.1: ecdsa-with-SHA1.
const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
/// 1.2.840.10045.4.3.x: ecdsa-with-SHA224/256/384/512 (x = 1..4).
const ECDSA_SHA2_PREFIX: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
/// 1.2.840.10040.4.3: dsa-with-sha1.
const DSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03];
/// 2.16.840.1.101.3.4.3.x: dsa-with-sha224/256 (x = 1, 2).
const DSA_SHA2_PREFIX: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];
/// 2.16.840.1.101.3.4.2.x: sha256, sha384, sha512, sha224 (x = 1..4).
const NIST_HASH_PREFIX: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
/// 1.3.14.3.2.26: sha1.
const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// 1.2.840.113549.1.1.8: id-mgf1.
const MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];

const TAG_SEQUENCE: u8 = 0x30;
const TAG_OID: u8 = 0x06;
const TAG_NULL: u8 = 0x05;

impl ChannelBinding {
    /// The `tls-server-end-point` binding for the server certificate `cert_der` (the end-entity
    /// certificate as sent in the TLS Certificate message); `None` when RFC 5929 §4.1 leaves
    /// it undefined for the certificate's signature algorithm, or the DER is not a certificate.
    pub fn tls_server_end_point(cert_der: &[u8]) -> Option<ChannelBinding> {
        let hash = end_point_hash(cert_der)?;
        Some(ChannelBinding {
            kind: ChannelBindingKind::TlsServerEndPoint,
            data: hash.digest(cert_der),
        })
    }
}

/// Reads `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }`
/// (RFC 5280 §4.1) far enough to choose the hash.
fn end_point_hash(cert_der: &[u8]) -> Option<EndPointHash> {
    let mut input = cert_der;
    let cert = expect(&mut input, TAG_SEQUENCE)?;
    if !input.is_empty() {
        return None;
    }
    let mut fields = cert;
    expect(&mut fields, TAG_SEQUENCE)?; // tbsCertificate
    let mut alg = expect(&mut fields, TAG_SEQUENCE)?;
    let oid = expect(&mut alg, TAG_OID)?;
    signature_hash(oid, alg).map(SigHash::end_point)
}

/// The one hash function of a signature algorithm, `params` being the DER after its OID.
fn signature_hash(oid: &[u8], params: &[u8]) -> Option<SigHash> {
    if let Some(&[last]) = oid.strip_prefix(PKCS1_PREFIX) {
        return match last {
            0x04 => Some(SigHash::Md5),
            0x05 => Some(SigHash::Sha1),
            0x0a => pss_hash(params),
            0x0b => Some(SigHash::Sha256),
            0x0c => Some(SigHash::Sha384),
            0x0d => Some(SigHash::Sha512),
            0x0e => Some(SigHash::Sha224),
            _ => None,
        };
    }
    if oid == ECDSA_SHA1 || oid == DSA_SHA1 {
        return Some(SigHash::Sha1);
    }
    if let Some(&[last]) = oid.strip_prefix(ECDSA_SHA2_PREFIX) {
        return match last {
            1 => Some(SigHash::Sha224),
            2 => Some(SigHash::Sha256),
            3 => Some(SigHash::Sha384),
            4 => Some(SigHash::Sha512),
            _ => None,
        };
    }
    if let Some(&[last]) = oid.strip_prefix(DSA_SHA2_PREFIX) {
        return match last {
            1 => Some(SigHash::Sha224),
            2 => Some(SigHash::Sha256),
            _ => None,
        };
    }
    // Ed25519, Ed448 and anything unknown: no single hash function to name.
    None
}

/// RSASSA-PSS (RFC 4055 §3.1): `SEQUENCE { [0] hashAlgorithm DEFAULT sha1, [1]
/// maskGenAlgorithm DEFAULT mgf1SHA1, [2] saltLength, [3] trailerField }`. The binding is
/// defined only when MGF1 uses the same hash as the signature (else there are two).
fn pss_hash(params: &[u8]) -> Option<SigHash> {
    let mut input = params;
    let mut seq = expect(&mut input, TAG_SEQUENCE)?;
    if !input.is_empty() {
        return None;
    }
    let mut hash = SigHash::Sha1;
    let mut mgf_hash = SigHash::Sha1;
    while !seq.is_empty() {
        let (tag, mut value) = read_tlv(&mut seq)?;
        match tag {
            0xa0 => hash = hash_algorithm(&mut value)?,
            0xa1 => {
                let mut mgf = expect(&mut value, TAG_SEQUENCE)?;
                if expect(&mut mgf, TAG_OID)? != MGF1 {
                    return None;
                }
                mgf_hash = hash_algorithm(&mut mgf)?;
                if !mgf.is_empty() {
                    return None;
                }
            }
            0xa2 | 0xa3 => continue,
            _ => return None,
        }
        if !value.is_empty() {
            return None;
        }
    }
    (hash == mgf_hash).then_some(hash)
}

/// `AlgorithmIdentifier` of a hash function: `SEQUENCE { OID, NULL OPTIONAL }`.
fn hash_algorithm(input: &mut &[u8]) -> Option<SigHash> {
    let mut alg = expect(input, TAG_SEQUENCE)?;
    let oid = expect(&mut alg, TAG_OID)?;
    if !alg.is_empty() {
        let null = expect(&mut alg, TAG_NULL)?;
        if !null.is_empty() || !alg.is_empty() {
            return None;
        }
    }
    if oid == SHA1 {
        return Some(SigHash::Sha1);
    }
    match oid.strip_prefix(NIST_HASH_PREFIX)? {
        [1] => Some(SigHash::Sha256),
        [2] => Some(SigHash::Sha384),
        [3] => Some(SigHash::Sha512),
        [4] => Some(SigHash::Sha224),
        _ => None,
    }
}

/// Reads one TLV with the given tag and returns its value.
fn expect<'a>(input: &mut &'a [u8], tag: u8) -> Option<&'a [u8]> {
    match read_tlv(input)? {
        (t, value) if t == tag => Some(value),
        _ => None,
    }
}

/// Reads one DER TLV (single-octet tag, definite length in the shortest form).
fn read_tlv<'a>(input: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // high tag numbers never occur on this path
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None; // indefinite length is BER, not DER; 4 GiB is plenty
        }
        let (octets, tail) = rest.split_at(n);
        rest = tail;
        if octets[0] == 0 {
            return None; // not the shortest form
        }
        let len = octets
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 {
            return None; // should have used the short form
        }
        len
    };
    if rest.len() < len {
        return None;
    }
    let (value, tail) = rest.split_at(len);
    *input = tail;
    Some((tag, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DER TLV with a short or long length.
    fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match value.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
            n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(value);
        out
    }

    /// A structurally valid certificate whose signature algorithm is `alg` (OID + params).
    fn cert(alg_oid: &[u8], params: &[u8]) -> Vec<u8> {
        let tbs = tlv(TAG_SEQUENCE, &[0x02, 0x01, 0x01]);
        let mut alg = tlv(TAG_OID, alg_oid);
        alg.extend_from_slice(params);
        let mut body = tbs;
        body.extend(tlv(TAG_SEQUENCE, &alg));
        body.extend(tlv(0x03, &[0x00, 0xaa, 0xbb]));
        tlv(TAG_SEQUENCE, &body)
    }

    fn pkcs1(last: u8) -> Vec<u8> {
        let mut o = PKCS1_PREFIX.to_vec();
        o.push(last);
        o
    }

    fn nist_hash(last: u8) -> Vec<u8> {
        let mut o = NIST_HASH_PREFIX.to_vec();
        o.push(last);
        tlv(TAG_SEQUENCE, &tlv(TAG_OID, &o))
    }

    fn pss(hash: Option<Vec<u8>>, mgf_hash: Option<Vec<u8>>) -> Vec<u8> {
        let mut p = Vec::new();
        if let Some(h) = hash {
            p.extend(tlv(0xa0, &h));
        }
        if let Some(h) = mgf_hash {
            let mut mgf = tlv(TAG_OID, MGF1);
            mgf.extend(h);
            p.extend(tlv(0xa1, &tlv(TAG_SEQUENCE, &mgf)));
        }
        p.extend(tlv(0xa2, &[0x02, 0x01, 0x20]));
        tlv(TAG_SEQUENCE, &p)
    }

    #[test]
    fn hash_follows_rfc_5929_section_4_1() {
        let null = tlv(TAG_NULL, &[]);
        let mut ecdsa = ECDSA_SHA2_PREFIX.to_vec();
        ecdsa.push(3);
        let cases: Vec<(&str, Vec<u8>, Option<EndPointHash>)> = vec![
            (
                "md5WithRSA",
                cert(&pkcs1(0x04), &null),
                Some(EndPointHash::Sha256),
            ),
            (
                "sha1WithRSA",
                cert(&pkcs1(0x05), &null),
                Some(EndPointHash::Sha256),
            ),
            (
                "sha224WithRSA",
                cert(&pkcs1(0x0e), &null),
                Some(EndPointHash::Sha224),
            ),
            (
                "sha384WithRSA",
                cert(&pkcs1(0x0c), &null),
                Some(EndPointHash::Sha384),
            ),
            (
                "sha512WithRSA",
                cert(&pkcs1(0x0d), &null),
                Some(EndPointHash::Sha512),
            ),
            (
                "ecdsa-with-SHA1",
                cert(ECDSA_SHA1, &[]),
                Some(EndPointHash::Sha256),
            ),
            (
                "ecdsa-with-SHA384",
                cert(&ecdsa, &[]),
                Some(EndPointHash::Sha384),
            ),
            ("Ed25519", cert(&[0x2b, 0x65, 0x70], &[]), None),
            (
                "PSS defaults (SHA-1)",
                cert(&pkcs1(0x0a), &pss(None, None)),
                Some(EndPointHash::Sha256),
            ),
            (
                "PSS SHA-384/MGF1 SHA-384",
                cert(&pkcs1(0x0a), &pss(Some(nist_hash(2)), Some(nist_hash(2)))),
                Some(EndPointHash::Sha384),
            ),
            (
                "PSS SHA-512/MGF1 SHA-256",
                cert(&pkcs1(0x0a), &pss(Some(nist_hash(3)), Some(nist_hash(1)))),
                None,
            ),
            ("PSS without params", cert(&pkcs1(0x0a), &[]), None),
        ];
        for (name, der, want) in cases {
            assert_eq!(end_point_hash(&der), want, "{name}");
        }
    }

    #[test]
    fn binding_is_the_hash_of_the_whole_certificate() {
        let der = cert(&pkcs1(0x0c), &tlv(TAG_NULL, &[]));
        let cb = ChannelBinding::tls_server_end_point(&der).expect("defined for SHA-384");
        assert_eq!(cb.kind, ChannelBindingKind::TlsServerEndPoint);
        assert_eq!(cb.data, sha2::Sha384::digest(&der).to_vec());
    }

    #[test]
    fn malformed_der_is_refused() {
        let good = cert(&pkcs1(0x0b), &tlv(TAG_NULL, &[]));
        assert_eq!(end_point_hash(&good), Some(EndPointHash::Sha256));
        let mut trailing = good.clone();
        trailing.push(0);
        let long_form_small = [0x30, 0x81, 0x03, 0x30, 0x01, 0x00];
        let indefinite = [0x30, 0x80, 0x00, 0x00];
        for (name, der) in [
            ("empty", &[][..]),
            ("truncated", &good[..good.len() - 1]),
            ("trailing byte", &trailing[..]),
            ("not a sequence", &[0x04, 0x00][..]),
            ("non-minimal length", &long_form_small[..]),
            ("indefinite length", &indefinite[..]),
        ] {
            assert_eq!(end_point_hash(der), None, "{name}");
        }
    }

    #[test]
    fn long_lengths_are_read() {
        // A 300-byte tbsCertificate makes the outer length take two octets.
        let mut alg = tlv(TAG_OID, &pkcs1(0x0d));
        alg.extend(tlv(TAG_NULL, &[]));
        let mut body = tlv(TAG_SEQUENCE, &[0u8; 300]);
        body.extend(tlv(TAG_SEQUENCE, &alg));
        body.extend(tlv(0x03, &[0x00]));
        let der = tlv(TAG_SEQUENCE, &body);
        assert_eq!(der[1], 0x82);
        assert_eq!(end_point_hash(&der), Some(EndPointHash::Sha512));
    }
}
