//! RFC 5389 §6 (as RFC 5626 §8.1 uses it): the two STUN messages of a UDP keep-alive — the
//! Binding request the client sends and the Binding success response it recognises.

/// RFC 5389 §6: the magic cookie of every STUN message.
const MAGIC: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;

/// A STUN Binding request with transaction id `tid` (20 bytes, no attributes: RFC 5626 §8.1
/// needs none).
pub(crate) fn stun_binding_request(tid: [u8; 12]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    out.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&tid);
    out
}

/// The transaction id of a STUN Binding success response; `None` for anything else.
pub(crate) fn stun_success(datagram: &[u8]) -> Option<[u8; 12]> {
    if !cusax_sip_proto::stun::is_stun(datagram) {
        return None;
    }
    let kind = u16::from_be_bytes([*datagram.first()?, *datagram.get(1)?]);
    if kind != BINDING_SUCCESS {
        return None;
    }
    datagram.get(8..20)?.try_into().ok()
}
