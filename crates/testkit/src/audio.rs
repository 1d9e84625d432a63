//! Checks of recorded call audio: which tone a WAV file holds (Goertzel filter), so call tests
//! prove that media flowed in the right direction.

use std::path::Path;

/// Power of one frequency in a signal (Goertzel algorithm), normalised by length.
pub fn goertzel(samples: &[f64], rate: f64, hz: f64) -> f64 {
    let coeff = 2.0 * (std::f64::consts::TAU * hz / rate).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / samples.len().max(1) as f64
}

/// Asserts that the 8 kHz WAV file at `path` (first channel) holds at least `min_secs` of
/// audio whose power at `tone` is over 100 times that at each of `others` (a neighbouring
/// frequency, the recorder's own tone).
pub fn assert_tone(path: &Path, tone: f64, others: &[f64], min_secs: f64) {
    let r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    assert_eq!(spec.sample_rate, 8000, "{}", path.display());
    let ch = usize::from(spec.channels.max(1));
    let s: Vec<f64> = r
        .into_samples::<i16>()
        .step_by(ch)
        .map(|v| f64::from(v.expect("a readable sample")))
        .collect();
    assert!(
        s.len() as f64 >= min_secs * 8000.0,
        "{}: only {} samples",
        path.display(),
        s.len()
    );
    let p = goertzel(&s, 8000.0, tone);
    for &o in others {
        let q = goertzel(&s, 8000.0, o);
        assert!(
            p > 100.0 * q,
            "{}: power at {tone} Hz {p:.3e}, at {o} Hz {q:.3e}",
            path.display()
        );
    }
}
