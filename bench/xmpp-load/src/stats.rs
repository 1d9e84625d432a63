//! Latency samples (microseconds) and their percentiles; error counters by class.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Latency samples in microseconds.
#[derive(Debug, Default)]
pub struct Samples {
    v: Vec<u32>,
    cap: usize,
    dropped: u64,
}

impl Samples {
    /// At most `cap` samples are kept, so a long run cannot grow memory without bound.
    pub fn with_cap(cap: usize) -> Samples {
        Samples {
            v: Vec::new(),
            cap,
            dropped: 0,
        }
    }

    /// Records one sample.
    pub fn push_us(&mut self, us: u64) {
        if self.v.len() < self.cap {
            self.v.push(u32::try_from(us).unwrap_or(u32::MAX));
        } else {
            self.dropped += 1;
        }
    }

    /// Adds another set of samples.
    pub fn merge(&mut self, other: Samples) {
        self.dropped += other.dropped;
        self.v.extend(other.v);
    }

    /// Number of samples kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.v.len()
    }

    /// The p-th percentile (0..=100) in milliseconds, `None` without samples.
    pub fn percentile_ms(&mut self, p: f64) -> Option<f64> {
        if self.v.is_empty() {
            return None;
        }
        self.v.sort_unstable();
        // nearest-rank: the smallest sample with at least p % of samples at or below it
        let rank = ((p / 100.0) * self.v.len() as f64).ceil() as usize;
        let idx = rank.clamp(1, self.v.len()) - 1;
        Some(f64::from(self.v[idx]) / 1000.0)
    }

    /// `{"p50_ms":…,"p99_ms":…,"max_ms":…}` (null without samples).
    pub fn summary(&mut self) -> Value {
        let r = |x: Option<f64>| x.map(|v| (v * 1000.0).round() / 1000.0);
        json!({
            "p50_ms": r(self.percentile_ms(50.0)),
            "p99_ms": r(self.percentile_ms(99.0)),
            "max_ms": r(self.percentile_ms(100.0)),
            "samples": self.v.len(),
        })
    }
}

/// Failures by class, with the first message of each class for the report.
#[derive(Debug, Default)]
pub struct Errors {
    counts: BTreeMap<&'static str, u64>,
    first: BTreeMap<&'static str, String>,
}

impl Errors {
    /// Counts one failure.
    pub fn add(&mut self, class: &'static str, msg: impl FnOnce() -> String) {
        *self.counts.entry(class).or_default() += 1;
        self.first.entry(class).or_insert_with(msg);
    }

    /// Adds another set of counters.
    pub fn merge(&mut self, other: Errors) {
        for (k, v) in other.counts {
            *self.counts.entry(k).or_default() += v;
        }
        for (k, v) in other.first {
            self.first.entry(k).or_insert(v);
        }
    }

    /// Total failures.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Count of one class.
    pub fn count(&self, class: &str) -> u64 {
        self.counts.get(class).copied().unwrap_or(0)
    }

    /// The first message recorded, preferring refusals (the most telling).
    pub fn first_message(&self) -> Option<&str> {
        self.first
            .get("refused")
            .or_else(|| self.first.values().next())
            .map(String::as_str)
    }

    /// `{"class": count, …}` and `{"class": "first message", …}`.
    pub fn to_json(&self) -> Value {
        json!({ "counts": self.counts, "first": self.first })
    }
}

/// CPU seconds (user + system) this process used so far, from `/proc/self/stat`.
pub fn self_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the parenthesised command name; utime and stime are the 12th and 13th
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux ABI this runs on
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::with_cap(1000);
        for us in 1..=100 {
            s.push_us(us * 1000);
        }
        assert_eq!(s.percentile_ms(50.0), Some(50.0));
        assert_eq!(s.percentile_ms(99.0), Some(99.0));
        assert_eq!(s.percentile_ms(100.0), Some(100.0));
        assert_eq!(Samples::default().percentile_ms(50.0), None);
    }

    #[test]
    fn cap_bounds_memory() {
        let mut s = Samples::with_cap(2);
        for _ in 0..5 {
            s.push_us(1);
        }
        assert_eq!(s.len(), 2);
        assert_eq!(s.dropped, 3);
    }
}
