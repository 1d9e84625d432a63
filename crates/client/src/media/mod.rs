//! RFC 3550 and RFC 3264: the media side of a call — SDP offer/answer, RTP, G.711, audio files.

pub mod audio;
pub mod g711;
pub mod rtp;
pub mod sdp;

pub use audio::AudioSource;
pub use rtp::{MediaConfig, MediaStats};
pub use sdp::{Codec, Negotiated};
