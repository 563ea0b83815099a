//! The live loop: three threads joined by latest-wins [`Handoff`]s.
//!
//! - **capture** keeps dequeuing from the camera and publishes each frame; a frame not taken before
//!   the next one arrives goes back as a spare buffer and counts as stale, so the driver's buffers
//!   never fill and perception never sees an old frame;
//! - **perception** takes the freshest frame, runs the detector on it and publishes the grasps;
//!   while frame n is inferred, frame n+1 is captured;
//! - **decisions** (the caller's thread) take the freshest grasps, decide and drive the arm; the
//!   wait for the arm's ACK overlaps the next inference. During a pick, perception pauses, and it
//!   resumes on a frame captured after the motion ended, never one captured during it.
//!
//! On stop the decisions close both hand-offs, send STOP, and only then join the threads (which
//! end within one frame timeout or one inference): no frame is decided on after STOP, and nothing
//! but the decisions' thread ever writes to the arm.

use super::handoff::{Handoff, Taken};
use super::{check_size, detect, pause, Control, Detected, RuntimeError, Seen, Sense, Summary};
use crate::config::ControlMode;
use grasp_calib::TableView;
use grasp_devices::camera::{Frame, FrameError, FrameSource};
use grasp_models::decode::GraspMaps;
use grasp_models::detector::GraspDetector;
use grasp_models::Grasp;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One frame with what perception found in it.
#[derive(Default)]
struct Perceived {
    frame: Frame,
    /// Its table view, when the model sees one.
    view_rgb: Vec<u8>,
    grasps: Vec<Grasp>,
    /// The raw maps, copied only while the decisions want them for an annotation.
    maps: Option<GraspMaps>,
    detected: Detected,
    /// Age of the frame when its inference began, ms.
    age_ms: f64,
}

/// What perception reports besides frames.
enum SenseEvent {
    /// A frame did not come (damaged, timeout, camera lost): counted by the decisions.
    Skipped(FrameError),
    /// The replay is over.
    End,
    /// Perception cannot go on.
    Failed(RuntimeError),
}

/// State shared by the three threads.
#[derive(Default)]
struct Shared {
    frames: Handoff<Frame, FrameError>,
    results: Handoff<Perceived, SenseEvent>,
    /// A pick's motion is under way: perception waits.
    paused: AtomicBool,
    /// Frames captured before this instant are not used (the end of the last motion).
    not_before: Mutex<Option<Instant>>,
    /// Gaps in the source's frame counter.
    dropped: AtomicU64,
    /// Frames inferred while a newer one was already waiting (see [`crate::service::Stats::overtaken`]).
    overtaken: AtomicU64,
    /// One of the next two decided frames is annotated: perception copies the maps (a few hundred
    /// KB) only then. Two, because perception runs up to one result ahead of the decisions: the
    /// result decided as frame n+1 was published after frame n was taken, when this flag already
    /// covered n and n+1.
    want_maps: AtomicBool,
}

impl Shared {
    fn not_before(&self) -> Option<Instant> {
        *self.not_before.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `frame` was captured before the last motion ended.
    fn predates_motion(&self, frame: &Frame) -> bool {
        matches!((self.not_before(), frame.captured), (Some(limit), Some(t)) if t < limit)
    }

    /// Tells both threads to finish.
    fn close(&self) {
        self.frames.close();
        self.results.close();
    }
}

/// The counters the threads keep, as they were before this run (a pipeline can run again).
#[derive(Clone, Copy)]
struct Counters {
    stale: u64,
    dropped: u64,
    overtaken: u64,
}

impl Counters {
    fn of(stats: &crate::service::Stats) -> Self {
        Counters { stale: stats.stale_frames, dropped: stats.dropped_frames, overtaken: stats.overtaken }
    }

    /// Sets the stats' counters to these plus what the threads counted so far.
    fn add(self, stats: &mut crate::service::Stats, shared: &Shared) {
        stats.stale_frames = self.stale + shared.frames.stale() + shared.results.stale();
        stats.dropped_frames = self.dropped + shared.dropped.load(Ordering::Relaxed);
        stats.overtaken = self.overtaken + shared.overtaken.load(Ordering::Relaxed);
    }
}

/// Runs the live loop until `stop`, the replay's end or `max_frames` decided frames; sends STOP
/// before joining the capture and perception threads.
pub(super) fn run(
    sense: &mut Sense,
    control: &mut Control,
    stop: &AtomicBool,
    max_frames: Option<u64>,
) -> (Result<(), RuntimeError>, Summary) {
    let shared = Shared::default();
    let base = Counters::of(&control.stats);
    let timeout = control.parts.timing.frame_timeout;
    let Sense { source, detector, calibrated_size, top_k, view, .. } = sense;
    let (calibrated_size, top_k, view) = (*calibrated_size, *top_k, view.as_deref());
    std::thread::scope(|s| {
        let shared = &shared;
        let capture = std::thread::Builder::new()
            .name("capture".into())
            .spawn_scoped(s, move || capture_loop(source.as_mut(), shared, timeout));
        let perception = std::thread::Builder::new()
            .name("perception".into())
            .spawn_scoped(s, move || perceive_loop(detector, view, shared, calibrated_size, top_k));
        let result = match (capture, perception) {
            (Ok(_), Ok(_)) => decide_loop(control, shared, stop, max_frames, base),
            (Err(e), _) | (_, Err(e)) => {
                Err(RuntimeError::Camera(FrameError::Setup(format!("cannot start the live loop's threads: {e}"))))
            }
        };
        shared.close();
        base.add(&mut control.stats, shared);
        (result, control.shutdown())
    })
}

/// The capture thread: every frame the source gives is published at once.
fn capture_loop(source: &mut dyn FrameSource, shared: &Shared, timeout: Duration) {
    let mut last_index: Option<u64> = None;
    while !shared.frames.is_closed() {
        let mut frame = shared.frames.spare().unwrap_or_default();
        match source.next_frame(&mut frame, timeout) {
            Ok(()) => {
                if let Some(last) = last_index.filter(|last| frame.index > last + 1) {
                    shared.dropped.fetch_add(frame.index - last - 1, Ordering::Relaxed);
                }
                last_index = Some(frame.index);
                // A source without timestamps: the frame is as old as its arrival here.
                frame.captured.get_or_insert_with(Instant::now);
                shared.frames.publish(frame);
            }
            Err(e) => {
                shared.frames.recycle(frame);
                let (last, lost) =
                    (matches!(e, FrameError::End(_) | FrameError::Setup(_)), matches!(e, FrameError::Lost { .. }));
                shared.frames.event(e);
                if last {
                    return;
                }
                if lost {
                    std::thread::sleep(pause::CAMERA_LOST);
                }
            }
        }
    }
}

/// The perception thread: the freshest frame through the detector, its grasps published.
fn perceive_loop(
    detector: &mut GraspDetector,
    view: Option<&TableView>,
    shared: &Shared,
    calibrated_size: (usize, usize),
    top_k: usize,
) {
    let mut frame = Frame::default();
    let mut view_rgb = Vec::new();
    let mut grasps = Vec::new();
    while !shared.results.is_closed() {
        if shared.paused.load(Ordering::SeqCst) {
            std::thread::sleep(pause::PAUSED_POLL);
            continue;
        }
        let taken = match shared.frames.take(pause::LIVE_WAIT_SLICE) {
            Taken::Value(f) => f,
            Taken::Event(FrameError::End(_)) => return shared.results.event(SenseEvent::End),
            Taken::Event(e @ FrameError::Setup(_)) => {
                return shared.results.event(SenseEvent::Failed(RuntimeError::Camera(e)));
            }
            Taken::Event(e) => {
                shared.results.event(SenseEvent::Skipped(e));
                continue;
            }
            Taken::TimedOut => continue,
            Taken::Closed => return,
        };
        if shared.predates_motion(&taken) {
            shared.frames.recycle_stale(taken);
            continue;
        }
        shared.frames.recycle(std::mem::replace(&mut frame, taken));
        if let Err(e) = check_size(&frame, calibrated_size) {
            return shared.results.event(SenseEvent::Failed(e));
        }
        let inference_start = Instant::now();
        let age_ms = frame.captured.map_or(0.0, |t| inference_start.saturating_duration_since(t).as_secs_f64() * 1e3);
        let detected = match detect(detector, view, &frame, &mut view_rgb, top_k, &mut grasps) {
            Ok(d) => d,
            Err(e) => return shared.results.event(SenseEvent::Failed(e)),
        };
        if shared.frames.pending_since().is_some_and(|t| t < inference_start) {
            shared.overtaken.fetch_add(1, Ordering::Relaxed);
        }
        let mut out = shared.results.spare().unwrap_or_default();
        std::mem::swap(&mut out.frame, &mut frame);
        std::mem::swap(&mut out.view_rgb, &mut view_rgb);
        out.grasps.clone_from(&grasps);
        if shared.want_maps.load(Ordering::SeqCst) {
            match out.maps.as_mut() {
                Some(m) => m.clone_from(detector.maps()),
                None => out.maps = Some(detector.maps().clone()),
            }
        } else {
            out.maps = None;
        }
        (out.detected, out.age_ms) = (detected, age_ms);
        shared.results.publish(out);
    }
}

/// The decisions, on the caller's thread: the freshest perceived frame is decided on and acted
/// upon; perception pauses during a pick's motion.
fn decide_loop(
    control: &mut Control,
    shared: &Shared,
    stop: &AtomicBool,
    max_frames: Option<u64>,
    base: Counters,
) -> Result<(), RuntimeError> {
    while !stop.load(Ordering::SeqCst) && max_frames.is_none_or(|m| control.summary.frames < m) {
        control.poll_arm();
        base.add(&mut control.stats, shared);
        let next = control.summary.frames + 1;
        shared.want_maps.store(control.annotates(next) || control.annotates(next + 1), Ordering::SeqCst);
        let p = match shared.results.take(pause::LIVE_WAIT_SLICE) {
            Taken::Value(p) => p,
            Taken::Event(SenseEvent::Skipped(e)) => {
                control.parts.notifier.watchdog();
                control.skipped(e)?;
                continue;
            }
            Taken::Event(SenseEvent::End) | Taken::Closed => return Ok(()),
            Taken::Event(SenseEvent::Failed(e)) => return Err(e),
            Taken::TimedOut => {
                // No watchdog here: a perception that hangs must trip it.
                control.keep_link_alive();
                continue;
            }
        };
        control.parts.notifier.watchdog();
        if shared.predates_motion(&p.frame) {
            // Inferred while the motion began: the scene has changed since.
            shared.results.recycle_stale(p);
            continue;
        }
        control.stats.frame_counted();
        control.begin_frame(&p.frame, p.age_ms, p.detected);
        let decision = control.decide(&p.grasps);
        let motion = control.parts.mode == ControlMode::Pick && decision.action.is_some();
        if motion {
            shared.paused.store(true, Ordering::SeqCst);
        }
        control.actuate(decision.action, stop);
        if motion {
            *shared.not_before.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            shared.frames.discard_if(|f| shared.predates_motion(f));
            shared.paused.store(false, Ordering::SeqCst);
        }
        let seen = Seen::of(&p.frame, control.parts.view.as_deref(), &p.view_rgb);
        let reported = control.report(&p.frame, seen, &p.grasps, decision.chosen, p.maps.as_ref());
        shared.results.recycle(p);
        reported?;
    }
    Ok(())
}
