//! The operator's stats line: per-stage latency percentiles over a window, arm round trips, and
//! counters since start.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The stages of one frame that are timed, in loop order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Lockstep: waiting for and converting the camera frame. Live: the frame's age when its
    /// inference began (the wait for the camera overlaps the previous inference).
    Capture,
    /// Crop, resize and normalise for the model.
    Pre,
    /// The network.
    Infer,
    /// Decoding the maps into grasps.
    Post,
    /// Robot frame, safety filter, tracker or planner.
    Plan,
    /// Commands to the arm and their replies.
    Arm,
}

impl Stage {
    /// Every stage, in loop order (the stats line's order).
    pub const ALL: [Stage; 6] = [Stage::Capture, Stage::Pre, Stage::Infer, Stage::Post, Stage::Plan, Stage::Arm];

    /// The stage's name in the stats line.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Capture => "capture",
            Stage::Pre => "pre",
            Stage::Infer => "infer",
            Stage::Post => "post",
            Stage::Plan => "plan",
            Stage::Arm => "arm",
        }
    }
}

/// Glass-to-command latencies of a whole run, in 1 ms bins: the run's percentiles in bounded
/// memory (a service runs for months), and the data of the latency histogram plot.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    /// `bins[i]` counts latencies in [i, i + 1) ms; the last bin holds everything longer.
    pub bins: Vec<u64>,
    count: u64,
}

/// Latencies from this many ms up share the histogram's last bin.
pub const HISTOGRAM_MAX_MS: usize = 2000;

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram { bins: vec![0; HISTOGRAM_MAX_MS + 1], count: 0 }
    }
}

impl LatencyHistogram {
    /// Counts one latency.
    pub fn add(&mut self, ms: f64) {
        let bin = if ms.is_finite() && ms >= 0.0 { (ms as usize).min(HISTOGRAM_MAX_MS) } else { HISTOGRAM_MAX_MS };
        self.bins[bin] += 1;
        self.count += 1;
    }

    /// Latencies counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `p` quantile (nearest rank), as the upper edge of its bin in ms; `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count - 1) as f64 * p).round() as u64;
        let mut seen = 0;
        for (i, n) in self.bins.iter().enumerate() {
            seen += n;
            if seen > rank {
                return Some((i + 1) as f64);
            }
        }
        Some((HISTOGRAM_MAX_MS + 1) as f64)
    }
}

/// Latency samples since the last report, plus counters since start.
#[derive(Debug, Default)]
pub struct Stats {
    samples: [Vec<f64>; Stage::ALL.len()],
    rtt: Vec<f64>,
    latency: Vec<f64>,
    frames_since: u64,
    since: Option<Instant>,
    /// Frames processed since start.
    pub frames: u64,
    /// Frames skipped as damaged.
    pub corrupt_frames: u64,
    /// Waits for a frame that timed out.
    pub timeouts: u64,
    /// Times the camera was lost.
    pub camera_lost: u64,
    /// Frames the source skipped (gaps in its counter).
    pub dropped_frames: u64,
    /// Live mode: frames dropped unused because a newer one came first, or because they were
    /// captured during a pick's motion.
    pub stale_frames: u64,
    /// Live mode: frames inferred while a newer one was already waiting when their inference
    /// began (the freshest-frame rule makes this 0; it is counted to prove it).
    pub overtaken: u64,
    /// Grasps refused by the safety filter, by reason.
    pub refusals: BTreeMap<&'static str, u64>,
    /// Commands the arm accepted.
    pub commands: u64,
    /// Commands that failed.
    pub arm_errors: u64,
    /// Every glass-to-command latency since start.
    pub run_latency: LatencyHistogram,
    last_index: Option<u64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

impl Stats {
    /// Records how long `stage` took on one frame, ms.
    pub fn stage(&mut self, stage: Stage, ms: f64) {
        self.samples[stage as usize].push(ms);
    }

    /// Records one frame's glass-to-command latency: when its first command was written to the
    /// port, minus when the frame was captured.
    pub fn latency(&mut self, d: Duration) {
        let ms = d.as_secs_f64() * 1e3;
        self.latency.push(ms);
        self.run_latency.add(ms);
    }

    /// p50 and p99 of the glass-to-command latency over the current window, ms.
    pub fn latency_percentiles(&self) -> (f64, f64) {
        let mut v = self.latency.clone();
        v.sort_by(f64::total_cmp);
        (percentile(&v, 0.5), percentile(&v, 0.99))
    }

    /// Records one arm round trip.
    pub fn rtt(&mut self, d: Duration) {
        self.rtt.push(d.as_secs_f64() * 1e3);
    }

    /// Counts a frame whose drops are counted elsewhere (live mode: by the capture thread).
    pub fn frame_counted(&mut self) {
        self.frames += 1;
        self.frames_since += 1;
    }

    /// Counts a frame; gaps in the source's counter count as dropped.
    pub fn frame(&mut self, index: u64) {
        self.frame_counted();
        if let Some(last) = self.last_index {
            if index > last + 1 {
                self.dropped_frames += index - last - 1;
            }
        }
        self.last_index = Some(index);
    }

    /// p50 and p99 of one stage over the current window, ms.
    pub fn stage_percentiles(&self, stage: Stage) -> (f64, f64) {
        let mut v = self.samples[stage as usize].clone();
        v.sort_by(f64::total_cmp);
        (percentile(&v, 0.5), percentile(&v, 0.99))
    }

    /// Mean milliseconds of one stage in the current window (its total share of the time, where
    /// a median would leave the slow frames out); 0 without samples.
    pub fn stage_mean(&self, stage: Stage) -> f64 {
        let v = &self.samples[stage as usize];
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    }

    /// The stats line, if `interval` has passed since the last one; starts a new window.
    pub fn report(&mut self, interval: Duration, now: Instant) -> Option<String> {
        let since = *self.since.get_or_insert(now);
        let elapsed = now.duration_since(since);
        if elapsed < interval {
            return None;
        }
        let line = self.line(elapsed);
        for s in self.samples.iter_mut() {
            s.clear();
        }
        self.rtt.clear();
        self.latency.clear();
        self.frames_since = 0;
        self.since = Some(now);
        Some(line)
    }

    /// The stats line of the current window so far, without starting a new one.
    pub fn current_line(&self, now: Instant) -> String {
        self.line(self.since.map(|t| now.duration_since(t)).unwrap_or_default())
    }

    /// The stats line of a window this long.
    pub fn line(&self, window: Duration) -> String {
        let fps = self.frames_since as f64 / window.as_secs_f64().max(1e-9);
        let mut s = format!("{fps:.1} fps |");
        // A window without samples shows `-`, not NaN.
        let ms = |v: f64| if v.is_nan() { "-".to_string() } else { format!("{v:.1}") };
        for stage in Stage::ALL {
            let (p50, p99) = self.stage_percentiles(stage);
            s += &format!(" {} {}/{}", stage.name(), ms(p50), ms(p99));
        }
        s += " ms p50/p99 |";
        let mut rtt = self.rtt.clone();
        rtt.sort_by(f64::total_cmp);
        s += &format!(" arm rtt {}/{} ms |", ms(percentile(&rtt, 0.5)), ms(percentile(&rtt, 0.99)));
        let (l50, l99) = self.latency_percentiles();
        s += &format!(" latency {}/{} ms |", ms(l50), ms(l99));
        s += &format!(
            " frames {} (stale {}, corrupt {}, timeouts {}, dropped {}, camera lost {}) | commands {} (arm errors {})",
            self.frames,
            self.stale_frames,
            self.corrupt_frames,
            self.timeouts,
            self.dropped_frames,
            self.camera_lost,
            self.commands,
            self.arm_errors
        );
        if self.overtaken > 0 {
            s += &format!(" | overtaken {}", self.overtaken);
        }
        if !self.refusals.is_empty() {
            let r: Vec<String> = self.refusals.iter().map(|(k, v)| format!("{k} {v}")).collect();
            s += &format!(" | refused {}", r.join(", "));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_percentiles_fps_and_dropped_frames() {
        let mut s = Stats::default();
        let t0 = Instant::now();
        assert_eq!(s.report(Duration::from_secs(1), t0), None);
        for (i, idx) in [1u64, 2, 3, 7, 8].iter().enumerate() {
            s.frame(*idx);
            s.stage(Stage::Infer, 10.0 + i as f64);
        }
        s.stage(Stage::Infer, 100.0);
        let (p50, p99) = s.stage_percentiles(Stage::Infer);
        assert_eq!((p50, p99), (13.0, 100.0), "nearest rank of 10..14 and 100");
        assert_eq!(s.stage_mean(Stage::Infer), 160.0 / 6.0, "the slow sample counts in the mean");
        assert_eq!(s.stage_mean(Stage::Post), 0.0, "no samples");
        assert_eq!(s.dropped_frames, 3);
        let line = s.report(Duration::from_secs(1), t0 + Duration::from_millis(2500)).unwrap();
        assert!(line.starts_with("2.0 fps |"), "{line}");
        assert!(line.contains("infer 13.0/100.0"), "{line}");
        assert!(line.contains("dropped 3"), "{line}");
        assert!(s.stage_percentiles(Stage::Infer).0.is_nan(), "new window");
        assert_eq!(s.stage_mean(Stage::Infer), 0.0, "new window");
        let empty = s.current_line(t0 + Duration::from_millis(2600));
        assert!(empty.contains("infer -/-") && empty.contains("frames 5") && !empty.contains("NaN"), "{empty}");
        assert!(empty.contains("latency -/- ms"), "{empty}");
        for ms in [40, 45, 50, 300] {
            s.latency(Duration::from_millis(ms));
        }
        assert!(s.current_line(t0).contains("latency 50.0/300.0 ms"), "{}", s.current_line(t0));
        assert_eq!(s.run_latency.count(), 4);
        assert_eq!(s.run_latency.percentile(0.5), Some(51.0), "upper edge of the 50 ms bin");
        assert_eq!(s.run_latency.percentile(0.99), Some(301.0));
        s.report(Duration::from_secs(1), t0 + Duration::from_secs(9));
        assert_eq!(s.run_latency.count(), 4, "the run's histogram outlives the window");
    }

    #[test]
    fn the_histogram_bins_by_millisecond_and_keeps_outliers_in_its_last_bin() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.percentile(0.5), None);
        for ms in [0.2, 10.7, 10.9, 11.0, 1e9, f64::NAN] {
            h.add(ms);
        }
        assert_eq!((h.bins[0], h.bins[10], h.bins[11], h.bins[HISTOGRAM_MAX_MS]), (1, 2, 1, 2));
        assert_eq!(h.percentile(0.0), Some(1.0));
        assert_eq!(h.percentile(0.5), Some(12.0), "rank round(2.5) = 3: the 11.0 ms sample");
        assert_eq!(h.percentile(1.0), Some((HISTOGRAM_MAX_MS + 1) as f64));
    }
}
