//! What the service reports outward: systemd readiness/watchdog ([`Notifier`]), the operator's stats
//! line ([`Stats`]), annotated frames and the flight recorder.

use crate::arm::ArmCall;
use crate::control::Target;
use grasp_models::{Grasp, GraspMaps};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// systemd's notification socket, behind a trait so tests can watch it.
pub trait Notifier: Send {
    fn ready(&mut self);
    /// Called from the loop itself on every iteration; implementations rate-limit.
    fn watchdog(&mut self);
    fn stopping(&mut self);
    fn status(&mut self, text: &str);
}

/// `sd_notify` through `$NOTIFY_SOCKET` (a no-op outside systemd). Watchdog pings are sent at half
/// the service's `WatchdogSec`.
pub struct SdNotifier {
    watchdog_every: Option<Duration>,
    last_ping: Option<Instant>,
}

impl SdNotifier {
    pub fn from_env() -> Self {
        let mut usec = 0u64;
        let watchdog_every = sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec / 2));
        if let Some(d) = watchdog_every {
            log::info!("systemd watchdog enabled: pinging every {:.1} s", d.as_secs_f64());
        }
        SdNotifier { watchdog_every, last_ping: None }
    }

    fn send(&self, state: &[sd_notify::NotifyState]) {
        if let Err(e) = sd_notify::notify(false, state) {
            log::warn!("sd_notify failed: {e}");
        }
    }
}

impl Notifier for SdNotifier {
    fn ready(&mut self) {
        self.send(&[sd_notify::NotifyState::Ready]);
    }
    fn watchdog(&mut self) {
        let Some(every) = self.watchdog_every else { return };
        if self.last_ping.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last_ping = Some(Instant::now());
        self.send(&[sd_notify::NotifyState::Watchdog]);
    }
    fn stopping(&mut self) {
        self.send(&[sd_notify::NotifyState::Stopping]);
    }
    fn status(&mut self, text: &str) {
        self.send(&[sd_notify::NotifyState::Status(text)]);
    }
}

/// A notifier that does nothing (interactive runs).
pub struct NoNotifier;
impl Notifier for NoNotifier {
    fn ready(&mut self) {}
    fn watchdog(&mut self) {}
    fn stopping(&mut self) {}
    fn status(&mut self, _text: &str) {}
}

/// Pipeline stages timed per frame.
pub const STAGES: [&str; 6] = ["capture", "pre", "infer", "post", "plan", "arm"];

/// Latency samples since the last report, plus counters since start.
#[derive(Debug, Default)]
pub struct Stats {
    samples: [Vec<f64>; 6],
    rtt: Vec<f64>,
    frames_since: u64,
    since: Option<Instant>,
    pub frames: u64,
    pub corrupt_frames: u64,
    pub timeouts: u64,
    pub camera_lost: u64,
    /// Frames the source skipped (gaps in its counter).
    pub dropped_frames: u64,
    pub refusals: BTreeMap<&'static str, u64>,
    pub commands: u64,
    pub arm_errors: u64,
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
    pub fn stage(&mut self, stage: usize, ms: f64) {
        self.samples[stage].push(ms);
    }

    pub fn rtt(&mut self, d: Duration) {
        self.rtt.push(d.as_secs_f64() * 1e3);
    }

    pub fn frame(&mut self, index: u64) {
        self.frames += 1;
        self.frames_since += 1;
        if let Some(last) = self.last_index {
            if index > last + 1 {
                self.dropped_frames += index - last - 1;
            }
        }
        self.last_index = Some(index);
    }

    /// p50 and p99 of one stage over the current window, ms.
    pub fn stage_percentiles(&self, stage: usize) -> (f64, f64) {
        let mut v = self.samples[stage].clone();
        v.sort_by(f64::total_cmp);
        (percentile(&v, 0.5), percentile(&v, 0.99))
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
        self.frames_since = 0;
        self.since = Some(now);
        Some(line)
    }

    /// The stats line of the current window so far, without starting a new one.
    pub fn current_line(&self, now: Instant) -> String {
        self.line(self.since.map(|t| now.duration_since(t)).unwrap_or_default())
    }

    pub fn line(&self, window: Duration) -> String {
        let fps = self.frames_since as f64 / window.as_secs_f64().max(1e-9);
        let mut s = format!("{fps:.1} fps |");
        for (i, name) in STAGES.iter().enumerate() {
            let (p50, p99) = self.stage_percentiles(i);
            s += &format!(" {name} {p50:.1}/{p99:.1}");
        }
        s += " ms p50/p99 |";
        let mut rtt = self.rtt.clone();
        rtt.sort_by(f64::total_cmp);
        s += &format!(" arm rtt {:.1}/{:.1} ms |", percentile(&rtt, 0.5), percentile(&rtt, 0.99));
        s += &format!(" frames {} (corrupt {}, timeouts {}, dropped {}, camera lost {}) | commands {} (arm errors {})", self.frames, self.corrupt_frames, self.timeouts, self.dropped_frames, self.camera_lost, self.commands, self.arm_errors);
        if !self.refusals.is_empty() {
            let r: Vec<String> = self.refusals.iter().map(|(k, v)| format!("{k} {v}")).collect();
            s += &format!(" | refused {}", r.join(", "));
        }
        s
    }
}

/// Writes the frame with the chosen grasp (green; other candidates yellow) and, to its right, the
/// model's Q map as a heat-map scaled to the frame height.
pub fn write_annotated(path: &Path, rgb: &[u8], width: usize, height: usize, grasps: &[Grasp], chosen: Option<usize>, maps: &GraspMaps) -> Result<(), image::ImageError> {
    let n = maps.size;
    let mut canvas = image::RgbImage::new((width + height) as u32, height as u32);
    let frame = image::RgbImage::from_raw(width as u32, height as u32, rgb.to_vec()).expect("frame buffer matches its size");
    image::imageops::replace(&mut canvas, &frame, 0, 0);
    for (i, g) in grasps.iter().enumerate().rev() {
        let colour = if Some(i) == chosen { image::Rgb([0, 255, 0]) } else { image::Rgb([255, 220, 0]) };
        let (dx, dy) = (g.angle.cos() * g.width / 2.0, -g.angle.sin() * g.width / 2.0);
        imageproc::drawing::draw_line_segment_mut(&mut canvas, (g.x - dx, g.y - dy), (g.x + dx, g.y + dy), colour);
        // Jaws: short bars across the opening at both ends.
        let (jx, jy) = (-dy * 0.3, dx * 0.3);
        for s in [-1.0f32, 1.0] {
            let (ex, ey) = (g.x + s * dx, g.y + s * dy);
            imageproc::drawing::draw_line_segment_mut(&mut canvas, (ex - jx, ey - jy), (ex + jx, ey + jy), colour);
        }
    }
    // Q heat-map: black → red → yellow → white.
    for y in 0..height {
        for x in 0..height {
            let q = maps.q[(y * n / height) * n + x * n / height].clamp(0.0, 1.0);
            let c = [(q * 3.0).min(1.0), (q * 3.0 - 1.0).clamp(0.0, 1.0), (q * 3.0 - 2.0).clamp(0.0, 1.0)];
            canvas.put_pixel((width + x) as u32, y as u32, image::Rgb(c.map(|v| (v * 255.0) as u8)));
        }
    }
    canvas.save(path)
}

/// One line of a flight recording (`events.jsonl`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordedFrame {
    pub frame: u64,
    /// File name under `frames/`.
    pub file: String,
    pub grasps: Vec<[f32; 5]>,
    pub targets: Vec<serde_json::Value>,
    pub commands: Vec<serde_json::Value>,
}

/// Records frames (PNG under `frames/`), grasps and commands of a session (`events.jsonl`). The
/// directory is itself a replay source, and replaying it with the same model reproduces the commands.
pub struct Recorder {
    dir: PathBuf,
    events: std::io::BufWriter<std::fs::File>,
    count: u64,
}

impl Recorder {
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("frames"))?;
        let events = std::fs::File::create(dir.join("events.jsonl"))?;
        Ok(Recorder { dir: dir.to_path_buf(), events: std::io::BufWriter::new(events), count: 0 })
    }

    pub fn record(&mut self, rgb: &[u8], width: usize, height: usize, grasps: &[Grasp], targets: &[Target], commands: &[ArmCall]) -> std::io::Result<()> {
        self.count += 1;
        let file = format!("{:06}.png", self.count);
        image::save_buffer(self.dir.join("frames").join(&file), rgb, width as u32, height as u32, image::ExtendedColorType::Rgb8).map_err(std::io::Error::other)?;
        let rec = RecordedFrame {
            frame: self.count,
            file,
            grasps: grasps.iter().map(|g| [g.x, g.y, g.angle, g.width, g.quality]).collect(),
            targets: targets.iter().map(|t| serde_json::to_value(t).expect("plain data")).collect(),
            commands: commands.iter().map(|c| serde_json::to_value(c).expect("plain data")).collect(),
        };
        serde_json::to_writer(&mut self.events, &rec)?;
        self.events.write_all(b"\n")?;
        self.events.flush()
    }

    /// Reads back a recording's events.
    pub fn read_events(dir: &Path) -> std::io::Result<Vec<RecordedFrame>> {
        let text = std::fs::read_to_string(dir.join("events.jsonl"))?;
        text.lines()
            .enumerate()
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}/events.jsonl line {}: {e}", dir.display(), i + 1))))
            .collect()
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
            s.stage(2, 10.0 + i as f64);
        }
        s.stage(2, 100.0);
        let (p50, p99) = s.stage_percentiles(2);
        assert_eq!((p50, p99), (13.0, 100.0), "nearest rank of 10..14 and 100");
        assert_eq!(s.dropped_frames, 3);
        let line = s.report(Duration::from_secs(1), t0 + Duration::from_millis(2500)).unwrap();
        assert!(line.starts_with("2.0 fps |"), "{line}");
        assert!(line.contains("infer 13.0/100.0"), "{line}");
        assert!(line.contains("dropped 3"), "{line}");
        assert!(s.stage_percentiles(2).0.is_nan(), "new window");
    }
}
