//! RFC 3261 §17, RFC 6026: transaction state machines, sans-IO.
