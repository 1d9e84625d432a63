//! RFC 3261 §20: typed views of header field values, parsed on demand from the buffer.

mod auth;
mod name_addr;
mod scalar;
mod via;

pub use auth::{Challenge, Credentials};
pub use name_addr::{Contact, ContactValue, NameAddr};
pub(crate) use scalar::call_id_ok as scalar_call_id_ok;
pub use scalar::{CSeq, CallInfo, Event, parse_delta_seconds, parse_max_forwards};
pub use via::{Rport, Via};

use super::text::{find_unquoted, trim};

/// Iterates the elements of a `#rule` list value, split at commas outside quotes and `<…>`.
///
/// Empty elements are yielded (as empty slices) so that typed parsers can reject them.
#[derive(Debug, Clone)]
pub struct ValueIter<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> ValueIter<'a> {
    /// Starts iterating a header value.
    pub fn new(value: &'a [u8]) -> Self {
        Self { rest: Some(value) }
    }
}

impl<'a> Iterator for ValueIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match find_unquoted(rest, b',') {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(trim(&rest[..i]))
            }
            None => {
                self.rest = None;
                Some(trim(rest))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ValueIter;

    #[test]
    fn split_respects_quotes_and_angles() {
        let v: Vec<_> = ValueIter::new(b"\"a, b\" <sip:x@y;p=1,2>;q=0.5 , <sip:z>,").collect();
        assert_eq!(
            v,
            vec![&b"\"a, b\" <sip:x@y;p=1,2>;q=0.5"[..], b"<sip:z>", b""]
        );
    }
}
