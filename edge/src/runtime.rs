//! The loop: capture → detect (preprocess, infer, decode) → robot frame → safety filter → stream
//! tracker or pick planner → arm. Devices come in as traits; time comes from a [`Clock`] so a replay
//! makes the same decisions at any speed.

use crate::config::ControlMode;
use crate::control::{PickPlanner, PickStep, SafetyLimits, StreamTracker, Target};
use crate::service::{self, Notifier, Recorder, Stage, Stats};
use grasp_calib::CameraModel;
use grasp_devices::arm::{Arm, ArmCall, ArmError, ArmPose, Reconnecting};
use grasp_devices::camera::{Frame, FrameError, FrameSource};
use grasp_models::detector::GraspDetector;
use grasp_models::Grasp;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
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
}

/// Everything a [`Pipeline`] is built from (see `app::build_pipeline`).
pub struct PipelineParts {
    /// The camera or replay.
    pub source: Box<dyn FrameSource>,
    /// The model with its preprocessing and decoding.
    pub detector: GraspDetector,
    /// Pixel → robot frame.
    pub camera: CameraModel,
    /// The image size the calibration is valid for.
    pub calibrated_size: (usize, usize),
    /// Height of grasp points, mm in the robot frame.
    pub grasp_z: f64,
    /// Grasp candidates decoded per frame.
    pub top_k: usize,
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

/// The robot loop: camera frames in, arm commands out (see the module doc).
pub struct Pipeline {
    /// What it was built from: the devices, the model, the decisions' state, the timing.
    pub parts: PipelineParts,
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
    frame: Frame,
    candidates: Vec<Candidate>,
    grasps: Vec<Grasp>,
    targets: Vec<Target>,
    sent_this_frame: Vec<ArmCall>,
    summary: Summary,
    last_arm_traffic: Instant,
}

impl Pipeline {
    /// A pipeline of `parts`, without annotation, recorder or command callback.
    pub fn new(parts: PipelineParts) -> Self {
        Pipeline {
            parts,
            annotate: None,
            recorder: None,
            on_command: None,
            keep_commands: false,
            stats: Stats::default(),
            frame: Frame::default(),
            candidates: Vec::new(),
            grasps: Vec::new(),
            targets: Vec::new(),
            sent_this_frame: Vec::new(),
            summary: Summary::default(),
            last_arm_traffic: Instant::now(),
        }
    }

    /// Grasps in pixels → robot-frame targets, each checked by the safety filter; refusals are
    /// counted and logged, never sent.
    pub fn to_targets(
        camera: &CameraModel,
        grasp_z: f64,
        safety: &SafetyLimits,
        grasps: &[Grasp],
        stats: &mut Stats,
        out: &mut Vec<Candidate>,
    ) {
        out.clear();
        for g in grasps {
            let target =
                match camera.grasp_to_robot(g.x as f64, g.y as f64, g.angle as f64, g.width as f64, Some(grasp_z)) {
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
                // Glass to command: the first command a frame caused, against its capture time.
                if self.sent_this_frame.is_empty() && !matches!(call, ArmCall::Stop | ArmCall::Session) {
                    if let Some(captured) = self.frame.captured {
                        self.stats.latency(captured.elapsed());
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

    /// Runs until `stop` is set, the replay ends, or `max_frames` frames were processed; then
    /// sends STOP. Each frame goes through the named stages: capture, detect, decide, actuate,
    /// report.
    pub fn run(&mut self, stop: &AtomicBool, max_frames: Option<u64>) -> Result<Summary, RuntimeError> {
        self.connect_arm(stop);
        while !stop.load(Ordering::SeqCst) && max_frames.is_none_or(|m| self.summary.frames < m) {
            self.parts.notifier.watchdog();
            if self.parts.arm.poll(Instant::now()) {
                // A new session: whatever was planned before the loss is stale.
                self.parts.tracker.reset();
                self.parts.planner.reset();
            }
            self.sent_this_frame.clear();
            match self.capture()? {
                Captured::Frame => {}
                Captured::Skipped => continue,
                Captured::End => break,
            }
            let mut grasps = self.detect()?;
            let mut candidates = std::mem::take(&mut self.candidates);
            let mut targets = std::mem::take(&mut self.targets);
            let decision = self.decide(&grasps, &mut candidates, &mut targets);
            self.actuate(decision.action, stop);
            let reported = self.report(&grasps, &targets, decision.chosen);
            grasps.clear();
            (self.grasps, self.candidates, self.targets) = (grasps, candidates, targets);
            reported?;
        }
        Ok(self.shutdown())
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

    /// The next frame into `self.frame`; damaged frames, timeouts and a lost camera are counted
    /// and skipped, a frame of the wrong size stops the run (the calibration would not fit it).
    fn capture(&mut self) -> Result<Captured, RuntimeError> {
        let t_capture = Instant::now();
        match self.parts.source.next_frame(&mut self.frame, self.parts.timing.frame_timeout) {
            Ok(()) => {}
            Err(FrameError::End(_)) => return Ok(Captured::End),
            Err(e @ FrameError::Corrupt { .. }) => {
                self.stats.corrupt_frames += 1;
                log::warn!("{e} (skipped; {} so far)", self.stats.corrupt_frames);
                return Ok(Captured::Skipped);
            }
            Err(e @ FrameError::Timeout { .. }) => {
                self.stats.timeouts += 1;
                log::warn!("{e}");
                return Ok(Captured::Skipped);
            }
            Err(e @ FrameError::Lost { .. }) => {
                self.stats.camera_lost += 1;
                log::warn!("{e}; reopening");
                std::thread::sleep(pause::CAMERA_LOST);
                return Ok(Captured::Skipped);
            }
            Err(e @ FrameError::Setup(_)) => return Err(RuntimeError::Camera(e)),
        }
        self.parts.clock.next_frame();
        let (w, h) = (self.frame.width, self.frame.height);
        if (w, h) != self.parts.calibrated_size {
            return Err(RuntimeError::FrameSize {
                origin: self.frame.origin.clone(),
                got_w: w,
                got_h: h,
                want_w: self.parts.calibrated_size.0,
                want_h: self.parts.calibrated_size.1,
            });
        }
        self.stats.frame(self.frame.index);
        self.summary.frames += 1;
        self.stats.stage(Stage::Capture, t_capture.elapsed().as_secs_f64() * 1e3);
        Ok(Captured::Frame)
    }

    /// The frame's grasps (best first), in a buffer reused across frames.
    fn detect(&mut self) -> Result<Vec<Grasp>, RuntimeError> {
        let (w, h) = (self.frame.width, self.frame.height);
        let broken_before = self.parts.detector.non_finite_frames;
        let (found, ms) = self
            .parts
            .detector
            .detect(&self.frame.rgb, w, h, self.parts.top_k)
            .map_err(|source| RuntimeError::Detect { origin: self.frame.origin.clone(), source })?;
        let mut grasps = std::mem::take(&mut self.grasps);
        grasps.clear();
        grasps.extend_from_slice(found);
        if self.parts.detector.non_finite_frames > broken_before {
            *self.stats.refusals.entry("non-finite-output").or_default() += 1;
        }
        self.stats.stage(Stage::Pre, ms.pre);
        self.stats.stage(Stage::Infer, ms.infer);
        self.stats.stage(Stage::Post, ms.post);
        Ok(grasps)
    }

    /// Robot-frame targets through the safety filter, then the tracker's or the planner's
    /// decision, and which grasp to highlight: the one nearest to what is sent, or tracked.
    fn decide(&mut self, grasps: &[Grasp], candidates: &mut Vec<Candidate>, targets: &mut Vec<Target>) -> Decision {
        let t_plan = Instant::now();
        Self::to_targets(
            &self.parts.camera,
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
                .update(targets, now)
                .map(|t| (vec![PickStep::Move(t.pose)], self.parts.tracker.current())),
            ControlMode::Pick => self
                .parts
                .planner
                .observe(targets.first())
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
                candidates
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
            if self.last_arm_traffic.elapsed() >= self.parts.timing.heartbeat {
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
        self.stats.stage(Stage::Arm, t_arm.elapsed().as_secs_f64() * 1e3);
    }

    /// The annotated frame, the flight recorder and the stats line (log and systemd STATUS).
    fn report(&mut self, grasps: &[Grasp], targets: &[Target], chosen: Option<usize>) -> Result<(), RuntimeError> {
        let (w, h) = (self.frame.width, self.frame.height);
        let index = self.summary.frames;
        if let Some((dir, every)) = &self.annotate {
            if index.is_multiple_of(*every) || index == 1 {
                let path = dir.join(format!("frame-{index:06}.png"));
                if let Err(e) =
                    service::write_annotated(&path, &self.frame.rgb, w, h, grasps, chosen, self.parts.detector.maps())
                {
                    log::warn!("cannot write annotated frame {}: {e}", path.display());
                }
            }
        }
        if let Some(rec) = self.recorder.as_mut() {
            rec.record(&self.frame.rgb, w, h, grasps, targets, &self.sent_this_frame)
                .map_err(RuntimeError::Recorder)?;
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
        // The last window's latencies with the run's totals (also when no frame came at all).
        self.summary.stats_line = self.stats.current_line(Instant::now());
        self.summary.clone()
    }
}

/// What the capture stage got.
enum Captured {
    /// A frame of the calibrated size is in `Pipeline::frame`.
    Frame,
    /// Nothing usable this time (counted); try again.
    Skipped,
    /// The replay is over.
    End,
}
