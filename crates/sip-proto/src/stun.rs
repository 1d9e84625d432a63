//! RFC 5626 §4.4.2 and §8.1, RFC 5389 §6–§7 and §15.2: the STUN Binding keep-alive that
//! outbound clients send on a SIP UDP flow, answered with their reflexive address.
//!
//! Only what the keep-alive needs: a Binding request (no attributes are required, and any
//! present are ignored) gets a Binding success response carrying XOR-MAPPED-ADDRESS.

use std::net::{IpAddr, SocketAddr};

const MAGIC: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// True when `datagram` is shaped like a STUN message (RFC 5389 §6: the two top bits zero,
/// the magic cookie, a length that is a multiple of four and matches). SIP messages start
/// with a letter, so the two never collide (RFC 5626 §8.1 relies on that).
pub fn is_stun(datagram: &[u8]) -> bool {
    if datagram.len() < 20 || datagram[0] & 0xC0 != 0 {
        return false;
    }
    let len = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let cookie = u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]);
    cookie == MAGIC && len % 4 == 0 && len + 20 == datagram.len()
}

/// The answer to a Binding request from `from`; `None` for anything else (which is dropped).
pub fn binding_response(datagram: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    if !is_stun(datagram) || u16::from_be_bytes([datagram[0], datagram[1]]) != BINDING_REQUEST {
        return None;
    }
    let tid = &datagram[8..20];
    let mut attr = Vec::with_capacity(24);
    let xport = from.port() ^ ((MAGIC >> 16) as u16);
    match from.ip() {
        IpAddr::V4(v4) => {
            attr.extend_from_slice(&[0, 0x01]);
            attr.extend_from_slice(&xport.to_be_bytes());
            let x = u32::from(v4) ^ MAGIC;
            attr.extend_from_slice(&x.to_be_bytes());
        }
        IpAddr::V6(v6) => {
            attr.extend_from_slice(&[0, 0x02]);
            attr.extend_from_slice(&xport.to_be_bytes());
            let mut key = [0u8; 16];
            key[..4].copy_from_slice(&MAGIC.to_be_bytes());
            key[4..].copy_from_slice(tid);
            for (o, k) in v6.octets().iter().zip(key) {
                attr.push(o ^ k);
            }
        }
    }
    let mut out = Vec::with_capacity(20 + 4 + attr.len());
    out.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    let body_len = u16::try_from(4 + attr.len()).unwrap_or(0);
    out.extend_from_slice(&body_len.to_be_bytes());
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(tid);
    out.extend_from_slice(&XOR_MAPPED_ADDRESS.to_be_bytes());
    out.extend_from_slice(&u16::try_from(attr.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&attr);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tid: [u8; 12]) -> Vec<u8> {
        let mut r = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
        r.extend_from_slice(&tid);
        r
    }

    #[test]
    fn binding_request_gets_the_reflexive_address() {
        let tid = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let from: SocketAddr = "192.0.2.1:32853".parse().expect("addr");
        let r = binding_response(&request(tid), from).expect("answered");
        assert_eq!(&r[0..2], &[0x01, 0x01]);
        assert_eq!(u16::from_be_bytes([r[2], r[3]]), 12);
        assert_eq!(&r[8..20], &tid);
        assert_eq!(&r[20..24], &[0x00, 0x20, 0x00, 0x08]);
        // RFC 5769 §2.2 style: port 32853 ^ 0x2112, 192.0.2.1 ^ 0x2112A442.
        assert_eq!(u16::from_be_bytes([r[26], r[27]]), 32853 ^ 0x2112);
        assert_eq!(&r[28..32], &[192 ^ 0x21, 0x12, 2 ^ 0xA4, 1 ^ 0x42]);
        let v6: SocketAddr = "[2001:db8::1]:5060".parse().expect("addr");
        let r = binding_response(&request(tid), v6).expect("answered");
        assert_eq!(r.len(), 20 + 4 + 20);
        assert_eq!(r[25], 0x02);
    }

    #[test]
    fn sip_and_garbage_are_not_stun() {
        assert!(!is_stun(b"OPTIONS sip:example.org SIP/2.0\r\n\r\n"));
        assert!(!is_stun(&[0u8; 19]));
        let mut wrong_len = request([0; 12]);
        wrong_len[3] = 4;
        assert!(binding_response(&wrong_len, "127.0.0.1:1".parse().expect("a")).is_none());
        let mut indication = request([0; 12]);
        indication[1] = 0x11;
        assert!(binding_response(&indication, "127.0.0.1:1".parse().expect("a")).is_none());
    }
}
