//! The loop: capture → detect (preprocess, infer, decode) → robot frame → safety filter → stream
//! tracker or pick planner → arm. Devices come in as traits; time comes from a [`Clock`] so a replay
//! makes the same decisions at any speed.
//!
//! A [`Pipeline`] is two halves: [`Sense`] (camera and model) and [`Control`] (decisions, the arm,
//! reports). In [`LoopMode::Lockstep`] one thread runs them in turn, frame after frame; in
//! [`LoopMode::Live`] ([`live`]) the camera and the model get their own threads and the
//! decisions always take the freshest result. The arm is only ever driven from the caller's
//! thread, so its ordering and the final STOP are the same in both modes.

use crate::config::{ControlMode, LoopMode};
use crate::control::{PickPlanner, PickStep, SafetyLimits, StreamTracker, Target};
use crate::service::{self, Notifier, Recorder, Stage, Stats};
use grasp_calib::{CameraModel, TableView};
use grasp_devices::arm::{Arm, ArmCall, ArmError, ArmPose, Reconnecting};
use grasp_devices::camera::{Frame, FrameError, FrameSource};
use grasp_models::decode::GraspMaps;
use grasp_models::detector::{GraspDetector, StageTimes};
use grasp_models::Grasp;

pub mod handoff;
pub mod live;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where decisions take their time from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// Wall time since start (live cameras).
    Wall(Instant),
    /// Frame count × period (replays: decisions do not depend on how fast the machine is).
    Frames {
        /// Length of one frame period.
        period: Duration,
        /// Frames so far.
        frames: u64,
    },
}

impl Clock {
    /// Time since the start.
    pub fn now(&self) -> Duration {
        match self {
            Clock::Wall(t0) => t0.elapsed(),
            Clock::Frames { period, frames } => period.saturating_mul(*frames as u32),
        }
    }
    fn next_frame(&mut self) {
        if let Clock::Frames { frames, .. } = self {
            *frames += 1;
        }
    }
}

/// Why the loop stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The camera delivers another size than the calibration's.
    #[error("frame from {origin} is {got_w}x{got_h} but the calibration is for {want_w}x{want_h}: recalibrate or set the camera to the calibrated size")]
    FrameSize {
        /// The source.
        origin: String,
        /// Frame width.
        got_w: usize,
        /// Frame height.
        got_h: usize,
        /// Calibrated width.
        want_w: usize,
        /// Calibrated height.
        want_h: usize,
    },
    /// The camera cannot be used as configured.
    #[error("camera setup failed: {0}")]
    Camera(FrameError),
    /// The model failed on a frame.
    #[error("detection failed on {origin}: {source}")]
    Detect {
        /// The frame.
        origin: String,
        /// Why.
        source: grasp_models::detector::DetectError,
    },
    /// The flight recorder could not write.
    #[error("flight recorder: {0}")]
    Recorder(std::io::Error),
}

/// Timeouts and periods of the loop.
#[derive(Debug, Clone, Copy)]
pub struct LoopTiming {
    /// Longest wait for one frame.
    pub frame_timeout: Duration,
    /// The arm link is pinged after this much silence.
    pub heartbeat: Duration,
    /// Longest wait for one motion.
    pub motion_timeout: Duration,
    /// Period of the stats line.
    pub stats_interval: Duration,
}

/// A frame's grasp in pixels with its robot-frame target.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// The grasp in image pixels.
    pub grasp: Grasp,
    /// It in the robot frame.
    pub target: Target,
}

/// What a run did (for the CLI summary and tests).
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Frames processed.
    pub frames: u64,
    /// Commands sent successfully.
    pub command_count: u64,
    /// The commands themselves, only when [`Pipeline::keep_commands`] is set (a long-running
    /// service must not accumulate them: the 100k-frame soak caught exactly that).
    pub commands: Vec<ArmCall>,
    /// Picks completed.
    pub picks: u64,
    /// Reconnections of the arm.
    pub reconnects: u64,
    /// The last stats line.
    pub stats_line: String,
    /// Glass-to-command latency over the whole run, p50 and p99 in ms (1 ms bins), if any
    /// command left.
    pub latency_ms: Option<(f64, f64)>,
    /// Frames dropped unused because a newer one came first (live mode).
    pub stale_frames: u64,
}

/// Called with every command sent (the demo prints them).
pub type CommandHook = Box<dyn FnMut(&ArmCall) + Send>;

/// Timing constants of the loop that are not configuration.
mod pause {
    use std::time::Duration;
    /// Between attempts to connect the arm before READY.
    pub const ARM_CONNECT_RETRY: Duration = Duration::from_millis(20);
    /// A motion is awaited in slices this long, so a stop request and the watchdog are served.
    pub const MOTION_WAIT_SLICE: Duration = Duration::from_millis(200);
    /// After a lost camera, before asking it for the next frame (it reopens at most once a second).
    pub const CAMERA_LOST: Duration = Duration::from_millis(100);
    /// Live mode: the decisions wait for a perceived frame in slices this long, so the arm
    /// link's heartbeat and a stop request are served.
    pub const LIVE_WAIT_SLICE: Duration = Duration::from_millis(50);
    /// Live mode: how often paused perception (during a pick's motion) looks again.
    pub const PAUSED_POLL: Duration = Duration::from_millis(5);
}

/// Everything a [`Pipeline`] is built from (see `app::build_pipeline`).
pub struct PipelineParts {
    /// The camera or replay.
    pub source: Box<dyn FrameSource>,
    /// The model with its preprocessing and decoding.
    pub detector: GraspDetector,
    /// The image size the calibration is valid for.
    pub calibrated_size: (usize, usize),
    /// Grasp candidates decoded per frame.
    pub top_k: usize,
    /// Live or lockstep.
    pub loop_mode: LoopMode,
    /// The decisions' half (its table view, if any, is also what perception warps to).
    pub control: ControlParts,
}

/// The perception half: camera and model, light in, grasps out (its own threads in live mode).
pub struct Sense {
    /// The camera or replay.
    pub source: Box<dyn FrameSource>,
    /// The model with its preprocessing and decoding.
    pub detector: GraspDetector,
    /// The image size the calibration is valid for.
    pub calibrated_size: (usize, usize),
    /// Grasp candidates decoded per frame.
    pub top_k: usize,
    /// The table view the model sees instead of the camera image, if any.
    pub view: Option<Arc<TableView>>,
    frame: Frame,
    /// The table view of the current frame (empty without a view).
    view_rgb: Vec<u8>,
    grasps: Vec<Grasp>,
}

/// What the decision half is built from: everything downstream of the grasps.
pub struct ControlParts {
    /// Pixel → robot frame.
    pub camera: CameraModel,
    /// With a table view, grasps are in its pixels and map to the robot affinely.
    pub view: Option<Arc<TableView>>,
    /// Height of grasp points, mm in the robot frame.
    pub grasp_z: f64,
    /// The workspace box, opening and quality limits.
    pub safety: SafetyLimits,
    /// Stream or pick.
    pub mode: ControlMode,
    /// Stream mode's decisions.
    pub tracker: StreamTracker,
    /// Pick mode's decisions.
    pub planner: PickPlanner,
    /// The arm, reconnecting.
    pub arm: Reconnecting,
    /// Timeouts and periods.
    pub timing: LoopTiming,
    /// Where decisions take their time from.
    pub clock: Clock,
    /// systemd (or nothing).
    pub notifier: Box<dyn Notifier>,
}

/// What one frame's decision stage chose: the steps to send and the grasp to highlight.
struct Decision {
    /// The tracker's target (stream) or the pick's steps (pick); `None`: nothing to send.
    action: Option<(Vec<PickStep>, Option<Target>)>,
    /// Index into the frame's grasps of the one drawn as chosen.
    chosen: Option<usize>,
}

/// The decision half: grasps in, arm commands out, and the reports. Only this half touches the
/// arm, on the caller's thread, in both loop modes.
pub struct Control {
    /// The decisions' state, the arm, the timing.
    pub parts: ControlParts,
    /// Write an annotated frame every N frames into this directory.
    pub annotate: Option<(PathBuf, u64)>,
    /// The flight recorder, if configured.
    pub recorder: Option<Recorder>,
    /// Called with every command sent (the demo prints them).
    pub on_command: Option<CommandHook>,
    /// Keep every command in the [`Summary`] (tests, short runs).
    pub keep_commands: bool,
    /// Latencies and counters.
    pub stats: Stats,
    /// Capture time of the frame being decided on (its commands' latency is measured from it).
    frame_captured: Option<Instant>,
    candidates: Vec<Candidate>,
    targets: Vec<Target>,
    sent_this_frame: Vec<ArmCall>,
    summary: Summary,
    last_arm_traffic: Instant,
}

/// The robot loop: camera frames in, arm commands out (see the module doc).
pub struct Pipeline {
    /// Camera and model.
    pub sense: Sense,
    /// Decisions, arm and reports.
    pub control: Control,
    /// Live or lockstep.
    pub loop_mode: LoopMode,
}

impl Pipeline {
    /// A pipeline of `parts`, without annotation, recorder or command callback.
    pub fn new(parts: PipelineParts) -> Self {
        let PipelineParts { source, detector, calibrated_size, top_k, loop_mode, control } = parts;
        Pipeline {
            sense: Sense {
                source,
                detector,
                calibrated_size,
                top_k,
                view: control.view.clone(),
                frame: Frame::default(),
                view_rgb: Vec::new(),
                grasps: Vec::new(),
            },
            control: Control {
                parts: control,
                annotate: None,
                recorder: None,
                on_command: None,
                keep_commands: false,
                stats: Stats::default(),
                frame_captured: None,
                candidates: Vec::new(),
                targets: Vec::new(),
                sent_this_frame: Vec::new(),
                summary: Summary::default(),
                last_arm_traffic: Instant::now(),
            },
            loop_mode,
        }
    }

    /// Runs until `stop` is set, the replay ends, or `max_frames` frames were decided on; then
    /// sends STOP, also when the loop ends with an error. Lockstep: each frame goes through the
    /// named stages capture, detect, decide, actuate, report in turn. Live: see [`live`].
    pub fn run(&mut self, stop: &AtomicBool, max_frames: Option<u64>) -> Result<Summary, RuntimeError> {
        self.control.connect_arm(stop);
        let (result, summary) = match self.loop_mode {
            LoopMode::Lockstep => {
                let r = self.run_lockstep(stop, max_frames);
                (r, self.control.shutdown())
            }
            LoopMode::Live => live::run(&mut self.sense, &mut self.control, stop, max_frames),
        };
        result.map(|()| summary)
    }

    fn run_lockstep(&mut self, stop: &AtomicBool, max_frames: Option<u64>) -> Result<(), RuntimeError> {
        let (sense, control) = (&mut self.sense, &mut self.control);
        while !stop.load(Ordering::SeqCst) && max_frames.is_none_or(|m| control.summary.frames < m) {
            control.parts.notifier.watchdog();
            control.poll_arm();
            let t_capture = Instant::now();
            match sense.source.next_frame(&mut sense.frame, control.parts.timing.frame_timeout) {
                Ok(()) => {}
                Err(FrameError::End(_)) => break,
                Err(e) => {
                    let lost = matches!(e, FrameError::Lost { .. });
                    control.skipped(e)?;
                    if lost {
                        std::thread::sleep(pause::CAMERA_LOST);
                    }
                    continue;
                }
            }
            let capture_ms = t_capture.elapsed().as_secs_f64() * 1e3;
            check_size(&sense.frame, sense.calibrated_size)?;
            control.stats.frame(sense.frame.index);
            let view = sense.view.as_deref();
            let detected =
                detect(&mut sense.detector, view, &sense.frame, &mut sense.view_rgb, sense.top_k, &mut sense.grasps)?;
            control.begin_frame(&sense.frame, capture_ms, detected);
            let decision = control.decide(&sense.grasps);
            control.actuate(decision.action, stop);
            let seen = Seen::of(&sense.frame, view, &sense.view_rgb);
            control.report(&sense.frame, seen, &sense.grasps, decision.chosen, Some(sense.detector.maps()))?;
        }
        Ok(())
    }
}

/// Fails on a frame of another size than the calibration's (the calibration would not fit it).
fn check_size(frame: &Frame, calibrated: (usize, usize)) -> Result<(), RuntimeError> {
    if (frame.width, frame.height) != calibrated {
        return Err(RuntimeError::FrameSize {
            origin: frame.origin.clone(),
            got_w: frame.width,
            got_h: frame.height,
            want_w: calibrated.0,
            want_h: calibrated.1,
        });
    }
    Ok(())
}

/// What detection measured on one frame.
#[derive(Debug, Clone, Copy, Default)]
struct Detected {
    times: StageTimes,
    /// The model gave non-finite values on this frame.
    non_finite: bool,
}

/// The frame's grasps (best first) into `grasps`: in the camera frame's pixels, or with a table
/// view in the view's (warped into `view_rgb` first; the warp counts as preprocessing).
fn detect(
    detector: &mut GraspDetector,
    view: Option<&TableView>,
    frame: &Frame,
    view_rgb: &mut Vec<u8>,
    top_k: usize,
    grasps: &mut Vec<Grasp>,
) -> Result<Detected, RuntimeError> {
    let broken_before = detector.non_finite_frames;
    let t_warp = Instant::now();
    let (rgb, w, h) = match view {
        Some(v) => {
            v.warp(&frame.rgb, view_rgb);
            (&view_rgb[..], v.size(), v.size())
        }
        None => (&frame.rgb[..], frame.width, frame.height),
    };
    let warp_ms = t_warp.elapsed().as_secs_f64() * 1e3;
    let (found, mut times) = detector
        .detect(rgb, w, h, top_k)
        .map_err(|source| RuntimeError::Detect { origin: frame.origin.clone(), source })?;
    times.pre += warp_ms;
    grasps.clear();
    grasps.extend_from_slice(found);
    Ok(Detected { times, non_finite: detector.non_finite_frames > broken_before })
}

/// The image the model saw: the camera frame, or its table view.
#[derive(Clone, Copy)]
struct Seen<'a> {
    rgb: &'a [u8],
    width: usize,
    height: usize,
    /// It is the table view, not the camera frame.
    table_view: bool,
}

impl<'a> Seen<'a> {
    fn of(frame: &'a Frame, view: Option<&TableView>, view_rgb: &'a [u8]) -> Self {
        match view {
            Some(v) => Seen { rgb: view_rgb, width: v.size(), height: v.size(), table_view: true },
            None => Seen { rgb: &frame.rgb, width: frame.width, height: frame.height, table_view: false },
        }
    }
}

impl Pipeline {
    /// Grasps in pixels → robot-frame targets, each checked by the safety filter; refusals are
    /// counted and logged, never sent.
    pub fn to_targets(
        camera: &CameraModel,
        view: Option<&TableView>,
        grasp_z: f64,
        safety: &SafetyLimits,
        grasps: &[Grasp],
        stats: &mut Stats,
        out: &mut Vec<Candidate>,
    ) {
        out.clear();
        for g in grasps {
            let (x, y, angle, width) = (g.x as f64, g.y as f64, g.angle as f64, g.width as f64);
            let robot = match view {
                // A view pixel is a table point: the affine map, no ray to cast.
                Some(v) => v.grasp_to_robot(x, y, angle, width, grasp_z),
                None => camera.grasp_to_robot(x, y, angle, width, Some(grasp_z)),
            };
            let target = match robot {
                Ok(r) => Target {
                    pose: ArmPose { x: r.x, y: r.y, z: r.z, yaw: r.yaw.to_degrees() },
                    opening_mm: r.opening_mm,
                    quality: g.quality,
                },
                Err(e) => {
                    *stats.refusals.entry("no-robot-point").or_default() += 1;
                    log::debug!("grasp at ({:.0}, {:.0}) px refused: {e}", g.x, g.y);
                    continue;
                }
            };
            match safety.check(&target) {
                Ok(()) => out.push(Candidate { grasp: *g, target }),
                Err(r) => {
                    *stats.refusals.entry(r.kind()).or_default() += 1;
                    log::debug!("grasp at ({:.0}, {:.0}) px refused: {r}", g.x, g.y);
                }
            }
        }
    }
}

impl Control {
    fn send(&mut self, call: ArmCall) -> Result<Option<grasp_devices::arm::MotionId>, ArmError> {
        // The last line of defence: nothing reaches the port that the safety gate refuses.
        if let Err(r) = self.parts.safety.gate(&call) {
            *self.stats.refusals.entry(r.kind()).or_default() += 1;
            log::error!("command {call:?} refused by the safety gate: {r}");
            return Err(ArmError::Other { port: self.parts.arm.describe(), source: Box::new(r) });
        }
        let t0 = Instant::now();
        let r = match &call {
            ArmCall::Session => self.parts.arm.start_session().map(|_| None),
            ArmCall::Move(p) => self.parts.arm.move_to(*p).map(Some),
            ArmCall::Grip(o) => self.parts.arm.grip(*o).map(Some),
            ArmCall::Home => self.parts.arm.home().map(Some),
            ArmCall::Track(p, o) => self.parts.arm.track(*p, *o).map(|_| None),
            ArmCall::Stop => self.parts.arm.stop().map(|_| None),
        };
        self.last_arm_traffic = Instant::now();
        match &r {
            Ok(_) => {
                self.stats.rtt(t0.elapsed());
                // Glass to command: when the frame's first command was written (the call's start,
                // not its ACK), against the frame's capture time.
                if self.sent_this_frame.is_empty() && !matches!(call, ArmCall::Stop | ArmCall::Session) {
                    if let Some(captured) = self.frame_captured {
                        self.stats.latency(t0.saturating_duration_since(captured));
                    }
                }
                self.stats.commands += 1;
                // Stream-mode targets come at up to rate_hz: debug, not the operator's log.
                if matches!(call, ArmCall::Track(..)) {
                    log::debug!("→ arm: {call:?}");
                } else {
                    log::info!("→ arm: {call:?}");
                }
                if let Some(f) = self.on_command.as_mut() {
                    f(&call);
                }
                self.summary.command_count += 1;
                if self.keep_commands {
                    self.summary.commands.push(call.clone());
                }
                self.sent_this_frame.push(call);
            }
            Err(e) => {
                self.stats.arm_errors += 1;
                log::warn!("arm command {call:?} failed: {e}");
            }
        }
        r
    }

    /// Waits for a motion in short slices so that a stop request and the watchdog are served.
    fn wait_motion(&mut self, id: grasp_devices::arm::MotionId, stop: &AtomicBool) -> Result<bool, ArmError> {
        let timeout = self.parts.timing.motion_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            self.parts.notifier.watchdog();
            if stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            match self
                .parts
                .arm
                .wait_done(id, pause::MOTION_WAIT_SLICE.min(deadline.saturating_duration_since(Instant::now())))
            {
                Ok(()) => return Ok(true),
                Err(ArmError::MotionTimeout { .. }) if Instant::now() < deadline => continue,
                // The whole wait, not the last slice, is what timed out.
                Err(ArmError::MotionTimeout { port, id, .. }) => {
                    return Err(ArmError::MotionTimeout { port, id, timeout })
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn execute_pick(&mut self, steps: &[PickStep], stop: &AtomicBool) {
        log::info!("pick: {} steps", steps.len());
        for step in steps {
            let outcome = self.send(step.call()).and_then(|id| match id {
                Some(id) => self.wait_motion(id, stop),
                None => Ok(true),
            });
            match outcome {
                Ok(true) => {}
                Ok(false) => return, // stopping: the caller sends STOP
                Err(e) => {
                    log::warn!("pick aborted: {e}");
                    if !e.is_link_lost() {
                        let _ = self.send(ArmCall::Stop);
                    }
                    return;
                }
            }
        }
        self.summary.picks += 1;
    }

    /// READY only once camera (opened by the caller), model (loaded) and arm are up.
    fn connect_arm(&mut self, stop: &AtomicBool) {
        while !self.parts.arm.is_connected() && !stop.load(Ordering::SeqCst) {
            if !self.parts.arm.poll(Instant::now()) {
                std::thread::sleep(pause::ARM_CONNECT_RETRY);
            }
        }
        self.parts.notifier.ready();
        self.parts.notifier.status("running");
    }

    /// A new session on the arm means whatever was planned before the loss is stale.
    fn poll_arm(&mut self) {
        if self.parts.arm.poll(Instant::now()) {
            self.parts.tracker.reset();
            self.parts.planner.reset();
        }
    }

    /// A frame that did not come: damaged frames, timeouts and a lost camera are counted and
    /// skipped; a setup failure ends the run.
    fn skipped(&mut self, e: FrameError) -> Result<(), RuntimeError> {
        match e {
            FrameError::Corrupt { .. } => {
                self.stats.corrupt_frames += 1;
                log::warn!("{e} (skipped; {} so far)", self.stats.corrupt_frames);
            }
            FrameError::Timeout { .. } => {
                self.stats.timeouts += 1;
                log::warn!("{e}");
            }
            FrameError::Lost { .. } => {
                self.stats.camera_lost += 1;
                log::warn!("{e}; reopening");
            }
            FrameError::Setup(_) | FrameError::End(_) => return Err(RuntimeError::Camera(e)),
        }
        Ok(())
    }

    /// Counts a frame that will be decided on, with its capture and detection times.
    fn begin_frame(&mut self, frame: &Frame, capture_ms: f64, detected: Detected) {
        self.sent_this_frame.clear();
        self.frame_captured = frame.captured;
        self.parts.clock.next_frame();
        self.summary.frames += 1;
        self.stats.stage(Stage::Capture, capture_ms);
        self.stats.stage(Stage::Pre, detected.times.pre);
        self.stats.stage(Stage::Infer, detected.times.infer);
        self.stats.stage(Stage::Post, detected.times.post);
        if detected.non_finite {
            *self.stats.refusals.entry("non-finite-output").or_default() += 1;
        }
    }

    /// Robot-frame targets through the safety filter, then the tracker's or the planner's
    /// decision, and which grasp to highlight: the one nearest to what is sent, or tracked.
    fn decide(&mut self, grasps: &[Grasp]) -> Decision {
        let t_plan = Instant::now();
        let (candidates, targets) = (&mut self.candidates, &mut self.targets);
        let view = self.parts.view.as_deref();
        Pipeline::to_targets(
            &self.parts.camera,
            view,
            self.parts.grasp_z,
            &self.parts.safety,
            grasps,
            &mut self.stats,
            candidates,
        );
        targets.clear();
        targets.extend(candidates.iter().map(|c| c.target));
        let now = self.parts.clock.now();
        let action = match self.parts.mode {
            ControlMode::Stream => self
                .parts
                .tracker
                .update(&self.targets, now)
                .map(|t| (vec![PickStep::Move(t.pose)], self.parts.tracker.current())),
            ControlMode::Pick => self
                .parts
                .planner
                .observe(self.targets.first())
                .map(|t| (self.parts.planner.plan(&t, self.parts.safety.max_opening_mm), Some(t))),
        };
        let action = action.filter(|(steps, _)| self.plan_passes_gate(steps));
        let focus = match &action {
            Some((_, Some(t))) => Some(*t),
            _ if self.parts.mode == ControlMode::Stream => self.parts.tracker.current(),
            _ => None,
        };
        let chosen = focus
            .and_then(|t| {
                self.candidates
                    .iter()
                    .min_by(|a, b| a.target.pose.distance(&t.pose).total_cmp(&b.target.pose.distance(&t.pose)))
            })
            .and_then(|c| grasps.iter().position(|g| g == &c.grasp));
        self.stats.stage(Stage::Plan, t_plan.elapsed().as_secs_f64() * 1e3);
        Decision { action, chosen }
    }

    /// Every step of a plan through the safety gate before its first motion, so that a pick is
    /// never half-executed; a refusal is counted and logged.
    fn plan_passes_gate(&mut self, steps: &[PickStep]) -> bool {
        let refused = steps.iter().find_map(|s| self.parts.safety.gate(&s.call()).err().map(|r| (*s, r)));
        match refused {
            None => true,
            Some((step, r)) => {
                *self.stats.refusals.entry(r.kind()).or_default() += 1;
                log::warn!("plan refused before its first motion: {step:?}: {r}");
                false
            }
        }
    }

    /// Sends the decision (a TRACK target, or a whole pick waited through) and keeps the link
    /// alive with a heartbeat when it has been idle.
    fn actuate(&mut self, action: Option<(Vec<PickStep>, Option<Target>)>, stop: &AtomicBool) {
        let t_arm = Instant::now();
        if self.parts.arm.is_connected() {
            match (self.parts.mode, action) {
                (ControlMode::Stream, Some((_, Some(t)))) => {
                    let _ = self.send(ArmCall::Track(t.pose, t.opening_mm));
                }
                (ControlMode::Pick, Some((steps, _))) => self.execute_pick(&steps, stop),
                _ => {}
            }
            self.keep_link_alive();
        }
        self.stats.stage(Stage::Arm, t_arm.elapsed().as_secs_f64() * 1e3);
    }

    /// A heartbeat when the arm link has been idle for the configured period.
    fn keep_link_alive(&mut self) {
        if self.parts.arm.is_connected() && self.last_arm_traffic.elapsed() >= self.parts.timing.heartbeat {
            match self.parts.arm.heartbeat() {
                Ok(rtt) => self.stats.rtt(rtt),
                Err(e) => {
                    self.stats.arm_errors += 1;
                    log::warn!("arm heartbeat failed: {e}");
                }
            }
            self.last_arm_traffic = Instant::now();
        }
    }

    /// Whether the decided frame number `index` (from 1) is written as an annotated frame.
    pub(super) fn annotates(&self, index: u64) -> bool {
        self.annotate.as_ref().is_some_and(|(_, every)| index == 1 || index.is_multiple_of(*every))
    }

    /// The annotated frame, the flight recorder and the stats line (log and systemd STATUS).
    /// `seen` is what the model saw (the frame or its table view: the annotation draws on it),
    /// `maps` are the frame's raw maps, for the annotation's heat-map (absent: no annotation).
    fn report(
        &mut self,
        frame: &Frame,
        seen: Seen<'_>,
        grasps: &[Grasp],
        chosen: Option<usize>,
        maps: Option<&GraspMaps>,
    ) -> Result<(), RuntimeError> {
        let index = self.summary.frames;
        if let (Some((dir, _)), Some(maps)) = (&self.annotate, maps) {
            if self.annotates(index) {
                let path = dir.join(format!("frame-{index:06}.png"));
                let (rgb, w, h) = (seen.rgb, seen.width, seen.height);
                if let Err(e) = service::write_annotated(&path, rgb, w, h, grasps, chosen, maps) {
                    log::warn!("cannot write annotated frame {}: {e}", path.display());
                }
            }
        }
        if let Some(rec) = self.recorder.as_mut() {
            let view = seen.table_view.then_some((seen.rgb, seen.width));
            rec.record(frame, view, grasps, &self.targets, &self.sent_this_frame).map_err(RuntimeError::Recorder)?;
        }
        if let Some(line) = self.stats.report(self.parts.timing.stats_interval, Instant::now()) {
            log::info!("stats: {line}");
            self.parts.notifier.status(&line);
        }
        Ok(())
    }

    /// STOP first (bounded by the driver's retries), then the port closes when the pipeline drops.
    fn shutdown(&mut self) -> Summary {
        self.parts.notifier.stopping();
        if self.parts.arm.is_connected() {
            if let Err(e) = self.send(ArmCall::Stop) {
                log::warn!("could not confirm STOP: {e}");
            }
        }
        self.summary.reconnects = self.parts.arm.reconnects;
        let h = &self.stats.run_latency;
        self.summary.latency_ms = h.percentile(0.5).zip(h.percentile(0.99));
        self.summary.stale_frames = self.stats.stale_frames;
        // The last window's latencies with the run's totals (also when no frame came at all).
        self.summary.stats_line = self.stats.current_line(Instant::now());
        self.summary.clone()
    }
}
