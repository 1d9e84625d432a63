//! RFC 3551 §4.5 (8000 Hz mono audio, 20 ms frames): where sent audio comes from (a tone or a
//! WAV file) and where received audio goes (a 16-bit mono WAV file through `hound`).

use std::f64::consts::TAU;
use std::path::{Path, PathBuf};

/// Samples per second of the G.711 stream.
pub const RATE: u32 = 8000;

/// What to send on a call.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum AudioSource {
    /// Silence (still sent, so that the peer sees packets).
    #[default]
    Silence,
    /// A sine tone at this frequency in Hz, at half full scale.
    Tone(f64),
    /// A WAV file, converted to 8000 Hz mono; played once, then silence.
    Wav(PathBuf),
}

/// Why an audio file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The WAV file cannot be read or written.
    #[error("WAV file {path}: {source}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// What hound reported.
        source: hound::Error,
    },
}

/// A generator of 8000 Hz samples, frame by frame.
#[derive(Debug)]
pub struct Player {
    kind: PlayerKind,
    position: u64,
}

#[derive(Debug)]
enum PlayerKind {
    Silence,
    Tone { hz: f64 },
    Samples(Vec<i16>),
}

impl Player {
    /// Prepares a source; a WAV file is read and converted at once.
    pub fn new(source: &AudioSource) -> Result<Self, AudioError> {
        let kind = match source {
            AudioSource::Silence => PlayerKind::Silence,
            AudioSource::Tone(hz) => PlayerKind::Tone { hz: *hz },
            AudioSource::Wav(path) => PlayerKind::Samples(read_wav(path)?),
        };
        Ok(Self { kind, position: 0 })
    }

    /// Fills `frame` with the next samples.
    pub fn fill(&mut self, frame: &mut [i16]) {
        for s in frame.iter_mut() {
            *s = match &self.kind {
                PlayerKind::Silence => 0,
                PlayerKind::Tone { hz } => {
                    let t = self.position as f64 / f64::from(RATE);
                    // Half of full scale: loud, and far from clipping after companding.
                    (16_384.0 * (TAU * hz * t).sin()).round() as i16
                }
                PlayerKind::Samples(v) => usize::try_from(self.position)
                    .ok()
                    .and_then(|i| v.get(i).copied())
                    .unwrap_or(0),
            };
            self.position += 1;
        }
    }
}

fn wav_err(path: &Path) -> impl FnOnce(hound::Error) -> AudioError + '_ {
    move |source| AudioError::Wav {
        path: path.to_owned(),
        source,
    }
}

/// Reads a WAV file as 8000 Hz mono 16-bit: the first channel, integer or float samples,
/// resampled by linear interpolation when the file has another rate.
pub fn read_wav(path: &Path) -> Result<Vec<i16>, AudioError> {
    let mut r = hound::WavReader::open(path).map_err(wav_err(path))?;
    let spec = r.spec();
    let channels = usize::from(spec.channels.max(1));
    let mono: Vec<f64> = match spec.sample_format {
        hound::SampleFormat::Float => r
            .samples::<f32>()
            .step_by(channels)
            .map(|s| s.map(|v| f64::from(v) * 32_767.0))
            .collect::<Result<_, _>>()
            .map_err(wav_err(path))?,
        hound::SampleFormat::Int => {
            let shift = i32::from(spec.bits_per_sample) - 16;
            r.samples::<i32>()
                .step_by(channels)
                .map(|s| {
                    s.map(|v| {
                        if shift >= 0 {
                            f64::from(v >> shift)
                        } else {
                            f64::from(v << -shift)
                        }
                    })
                })
                .collect::<Result<_, _>>()
                .map_err(wav_err(path))?
        }
    };
    Ok(resample(&mono, spec.sample_rate))
}

fn resample(input: &[f64], rate: u32) -> Vec<i16> {
    let clamp = |v: f64| v.clamp(-32_768.0, 32_767.0) as i16;
    if rate == RATE || rate == 0 || input.is_empty() {
        return input.iter().map(|&v| clamp(v)).collect();
    }
    let step = f64::from(rate) / f64::from(RATE);
    let n = (input.len() as f64 / step) as usize;
    (0..n)
        .map(|i| {
            let x = i as f64 * step;
            let i0 = x as usize;
            let frac = x - i0 as f64;
            let a = input.get(i0).copied().unwrap_or(0.0);
            let b = input.get(i0 + 1).copied().unwrap_or(a);
            clamp(a + (b - a) * frac)
        })
        .collect()
}

/// A WAV file receiving 8000 Hz mono 16-bit audio; finalised on [`Recorder::finish`].
pub struct Recorder {
    writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
    path: PathBuf,
    samples: u64,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.path)
            .field("samples", &self.samples)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates (or truncates) the file.
    pub fn create(path: &Path) -> Result<Self, AudioError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec).map_err(wav_err(path))?;
        Ok(Self {
            writer,
            path: path.to_owned(),
            samples: 0,
        })
    }

    /// Appends samples.
    pub fn write(&mut self, samples: &[i16]) -> Result<(), AudioError> {
        for &s in samples {
            self.writer.write_sample(s).map_err(wav_err(&self.path))?;
        }
        self.samples += samples.len() as u64;
        Ok(())
    }

    /// Number of samples written so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Writes the header sizes and closes the file; returns its path.
    pub fn finish(self) -> Result<PathBuf, AudioError> {
        let path = self.path;
        self.writer.finalize().map_err(wav_err(&path))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_has_the_requested_period_and_level() {
        let mut p = Player::new(&AudioSource::Tone(1000.0)).expect("tone");
        let mut f = [0i16; 160];
        p.fill(&mut f);
        // 1000 Hz at 8000 Hz: 8 samples per period; sample 2 is the positive peak.
        assert_eq!(f[0], 0);
        assert_eq!(f[2], 16_384);
        assert_eq!(f[6], -16_384);
        assert_eq!(f[8], f[0]);
        let mut g = [0i16; 160];
        p.fill(&mut g);
        assert_eq!(g[2], 16_384, "phase continues across frames");
    }

    #[test]
    fn wav_round_trip_and_resampling() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("a.wav");
        let mut rec = Recorder::create(&path).expect("create");
        rec.write(&[1, 2, 3, -4]).expect("write");
        assert_eq!(rec.samples(), 4);
        rec.finish().expect("finish");
        assert_eq!(read_wav(&path).expect("read"), vec![1, 2, 3, -4]);

        // A 16 kHz stereo file: left channel taken, every other sample kept.
        let stereo = dir.path().join("s.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&stereo, spec).expect("create");
        for i in 0..8i16 {
            w.write_sample(i * 100).expect("l");
            w.write_sample(-1).expect("r");
        }
        w.finalize().expect("fin");
        assert_eq!(read_wav(&stereo).expect("read"), vec![0, 200, 400, 600]);

        let mut p = Player::new(&AudioSource::Wav(path)).expect("wav");
        let mut f = [9i16; 6];
        p.fill(&mut f);
        assert_eq!(f, [1, 2, 3, -4, 0, 0], "played once, then silence");
        assert!(Player::new(&AudioSource::Wav(dir.path().join("missing.wav"))).is_err());
    }
}
