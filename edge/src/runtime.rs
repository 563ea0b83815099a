//! The loop: capture → detect (preprocess, infer, decode) → robot frame → safety filter → stream
//! tracker or pick planner → arm. Devices come in as traits; time comes from a [`Clock`] so a replay
//! makes the same decisions at any speed.

use crate::arm::{Arm, ArmCall, ArmError, ArmPose, Reconnecting};
use crate::config::ControlMode;
use crate::control::{PickPlanner, PickStep, SafetyLimits, StreamTracker, Target};
use crate::frames::{Frame, FrameError, FrameSource};
use crate::service::{self, Notifier, Recorder, Stats};
use grasp_calib::CameraModel;
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
    Frames { period: Duration, frames: u64 },
}

impl Clock {
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

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("frame from {origin} is {got_w}x{got_h} but the calibration is for {want_w}x{want_h}: recalibrate or set the camera to the calibrated size")]
    FrameSize { origin: String, got_w: usize, got_h: usize, want_w: usize, want_h: usize },
    #[error("camera setup failed: {0}")]
    Camera(FrameError),
    #[error("detection failed on {origin}: {source}")]
    Detect { origin: String, source: grasp_models::detector::DetectError },
    #[error("flight recorder: {0}")]
    Recorder(std::io::Error),
}

/// Timeouts and periods of the loop.
#[derive(Debug, Clone, Copy)]
pub struct LoopTiming {
    pub frame_timeout: Duration,
    pub heartbeat: Duration,
    pub motion_timeout: Duration,
    pub stats_interval: Duration,
}

/// A frame's grasp in pixels with its robot-frame target.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub grasp: Grasp,
    pub target: Target,
}

/// What a run did (for the CLI summary and tests).
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub frames: u64,
    /// Commands sent successfully.
    pub command_count: u64,
    /// The commands themselves, only when [`Pipeline::keep_commands`] is set (a long-running
    /// service must not accumulate them: the 100k-frame soak caught exactly that).
    pub commands: Vec<ArmCall>,
    pub picks: u64,
    pub reconnects: u64,
    pub stats_line: String,
}

pub struct Pipeline {
    pub source: Box<dyn FrameSource>,
    pub detector: GraspDetector,
    pub camera: CameraModel,
    /// The image size the calibration is valid for.
    pub calibrated_size: (usize, usize),
    /// Height of grasp points, mm in the robot frame.
    pub grasp_z: f64,
    pub top_k: usize,
    pub safety: SafetyLimits,
    pub mode: ControlMode,
    pub tracker: StreamTracker,
    pub planner: PickPlanner,
    pub arm: Reconnecting,
    pub timing: LoopTiming,
    pub clock: Clock,
    pub notifier: Box<dyn Notifier>,
    pub annotate: Option<(PathBuf, u64)>,
    pub recorder: Option<Recorder>,
    /// Called with every command sent (the demo prints them).
    pub on_command: Option<Box<dyn FnMut(&ArmCall) + Send>>,
    /// Keep every command in the [`Summary`] (tests, short runs).
    pub keep_commands: bool,
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
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: Box<dyn FrameSource>,
        detector: GraspDetector,
        camera: CameraModel,
        calibrated_size: (usize, usize),
        grasp_z: f64,
        top_k: usize,
        safety: SafetyLimits,
        mode: ControlMode,
        tracker: StreamTracker,
        planner: PickPlanner,
        arm: Reconnecting,
        timing: LoopTiming,
        clock: Clock,
        notifier: Box<dyn Notifier>,
    ) -> Self {
        Pipeline {
            source,
            detector,
            camera,
            calibrated_size,
            grasp_z,
            top_k,
            safety,
            mode,
            tracker,
            planner,
            arm,
            timing,
            clock,
            notifier,
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
    pub fn to_targets(camera: &CameraModel, grasp_z: f64, safety: &SafetyLimits, grasps: &[Grasp], stats: &mut Stats, out: &mut Vec<Candidate>) {
        out.clear();
        for g in grasps {
            let target = match camera.grasp_to_robot(g.x as f64, g.y as f64, g.angle as f64, g.width as f64, Some(grasp_z)) {
                Ok(r) => Target { pose: ArmPose { x: r.x, y: r.y, z: r.z, yaw: r.yaw.to_degrees() }, opening_mm: r.opening_mm, quality: g.quality },
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

    fn send(&mut self, call: ArmCall) -> Result<Option<crate::arm::MotionId>, ArmError> {
        let t0 = Instant::now();
        let r = match &call {
            ArmCall::Session => self.arm.start_session().map(|_| None),
            ArmCall::Move(p) => self.arm.move_to(*p).map(Some),
            ArmCall::Grip(o) => self.arm.grip(*o).map(Some),
            ArmCall::Home => self.arm.home().map(Some),
            ArmCall::Track(p, o) => self.arm.track(*p, *o).map(|_| None),
            ArmCall::Stop => self.arm.stop().map(|_| None),
        };
        self.last_arm_traffic = Instant::now();
        match &r {
            Ok(_) => {
                self.stats.rtt(t0.elapsed());
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
    fn wait_motion(&mut self, id: crate::arm::MotionId, stop: &AtomicBool) -> Result<bool, ArmError> {
        let deadline = Instant::now() + self.timing.motion_timeout;
        loop {
            self.notifier.watchdog();
            if stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            match self.arm.wait_done(id, Duration::from_millis(200)) {
                Ok(()) => return Ok(true),
                Err(ArmError::MotionTimeout { .. }) if Instant::now() < deadline => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn execute_pick(&mut self, steps: &[PickStep], stop: &AtomicBool) {
        log::info!("pick: {} steps", steps.len());
        for step in steps {
            let call = match step {
                PickStep::Move(p) => ArmCall::Move(*p),
                PickStep::Grip(o) => ArmCall::Grip(*o),
                PickStep::Home => ArmCall::Home,
            };
            let outcome = self.send(call).and_then(|id| match id {
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

    /// Runs until `stop` is set, the replay ends, or `max_frames` frames were processed.
    pub fn run(&mut self, stop: &AtomicBool, max_frames: Option<u64>) -> Result<Summary, RuntimeError> {
        // READY only once camera (opened by the caller), model (loaded) and arm are up.
        while !self.arm.is_connected() && !stop.load(Ordering::SeqCst) {
            if !self.arm.poll(Instant::now()) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.notifier.ready();
        self.notifier.status("running");
        let mut last_stats = String::new();
        while !stop.load(Ordering::SeqCst) && max_frames.map_or(true, |m| self.summary.frames < m) {
            self.notifier.watchdog();
            if self.arm.poll(Instant::now()) {
                // A new session: whatever was planned before the loss is stale.
                self.tracker.reset();
                self.planner.reset();
            }
            self.sent_this_frame.clear();
            let t_capture = Instant::now();
            match self.source.next_frame(&mut self.frame, self.timing.frame_timeout) {
                Ok(()) => {}
                Err(FrameError::End(_)) => break,
                Err(e @ FrameError::Corrupt { .. }) => {
                    self.stats.corrupt_frames += 1;
                    log::warn!("{e} (skipped; {} so far)", self.stats.corrupt_frames);
                    continue;
                }
                Err(e @ FrameError::Timeout { .. }) => {
                    self.stats.timeouts += 1;
                    log::warn!("{e}");
                    continue;
                }
                Err(e @ FrameError::Lost { .. }) => {
                    self.stats.camera_lost += 1;
                    log::warn!("{e}; reopening");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Err(e @ FrameError::Setup(_)) => return Err(RuntimeError::Camera(e)),
            }
            self.clock.next_frame();
            let (w, h) = (self.frame.width, self.frame.height);
            if (w, h) != self.calibrated_size {
                return Err(RuntimeError::FrameSize { origin: self.frame.origin.clone(), got_w: w, got_h: h, want_w: self.calibrated_size.0, want_h: self.calibrated_size.1 });
            }
            self.stats.frame(self.frame.index);
            self.summary.frames += 1;
            self.stats.stage(0, t_capture.elapsed().as_secs_f64() * 1e3);

            let (grasps, ms) = self.detector.detect(&self.frame.rgb, w, h, self.top_k).map_err(|source| RuntimeError::Detect { origin: self.frame.origin.clone(), source })?;
            // Buffers are reused across frames: no allocation here in steady state.
            let mut grasps_buf = std::mem::take(&mut self.grasps);
            grasps_buf.clear();
            grasps_buf.extend_from_slice(grasps);
            let grasps = grasps_buf;
            self.stats.stage(1, ms.pre);
            self.stats.stage(2, ms.infer);
            self.stats.stage(3, ms.post);

            let t_plan = Instant::now();
            let mut candidates = std::mem::take(&mut self.candidates);
            Self::to_targets(&self.camera, self.grasp_z, &self.safety, &grasps, &mut self.stats, &mut candidates);
            let mut targets = std::mem::take(&mut self.targets);
            targets.clear();
            targets.extend(candidates.iter().map(|c| c.target));
            let now = self.clock.now();
            let decision = match self.mode {
                ControlMode::Stream => self.tracker.update(&targets, now).map(|t| vec![PickStep::Move(t.pose)]).map(|v| (v, self.tracker.current())),
                ControlMode::Pick => self.planner.observe(targets.first()).map(|t| (self.planner.plan(&t, self.safety.max_opening_mm), Some(t))),
            };
            // The grasp to highlight: the one nearest to what is being sent, or tracked.
            let focus = match &decision {
                Some((_, Some(t))) => Some(*t),
                _ if self.mode == ControlMode::Stream => self.tracker.current(),
                _ => None,
            };
            let chosen = focus
                .and_then(|t| candidates.iter().min_by(|a, b| a.target.pose.distance(&t.pose).total_cmp(&b.target.pose.distance(&t.pose))))
                .and_then(|c| grasps.iter().position(|g| g == &c.grasp));
            self.stats.stage(4, t_plan.elapsed().as_secs_f64() * 1e3);

            let t_arm = Instant::now();
            if self.arm.is_connected() {
                match (self.mode, decision) {
                    (ControlMode::Stream, Some((_, Some(t)))) => {
                        let _ = self.send(ArmCall::Track(t.pose, t.opening_mm));
                    }
                    (ControlMode::Pick, Some((steps, _))) => self.execute_pick(&steps, stop),
                    _ => {}
                }
                if self.last_arm_traffic.elapsed() >= self.timing.heartbeat {
                    match self.arm.heartbeat() {
                        Ok(rtt) => self.stats.rtt(rtt),
                        Err(e) => {
                            self.stats.arm_errors += 1;
                            log::warn!("arm heartbeat failed: {e}");
                        }
                    }
                    self.last_arm_traffic = Instant::now();
                }
            }
            self.stats.stage(5, t_arm.elapsed().as_secs_f64() * 1e3);

            let index = self.summary.frames;
            if let Some((dir, every)) = &self.annotate {
                if index % every == 0 || index == 1 {
                    let path = dir.join(format!("frame-{index:06}.png"));
                    if let Err(e) = service::write_annotated(&path, &self.frame.rgb, w, h, &grasps, chosen, self.detector.maps()) {
                        log::warn!("cannot write annotated frame {}: {e}", path.display());
                    }
                }
            }
            if let Some(rec) = self.recorder.as_mut() {
                rec.record(&self.frame.rgb, w, h, &grasps, &targets, &self.sent_this_frame).map_err(RuntimeError::Recorder)?;
            }
            self.candidates = candidates;
            self.grasps = grasps;
            self.targets = targets;
            if let Some(line) = self.stats.report(self.timing.stats_interval, Instant::now()) {
                log::info!("stats: {line}");
                self.notifier.status(&line);
                last_stats = line;
            }
        }
        // Shutdown: STOP first (bounded by the driver's retries), then close the port by dropping it.
        self.notifier.stopping();
        if self.arm.is_connected() {
            if let Err(e) = self.send(ArmCall::Stop) {
                log::warn!("could not confirm STOP: {e}");
            }
        }
        self.summary.reconnects = self.arm.reconnects;
        // The last window's latencies with the run's totals.
        self.summary.stats_line = if self.summary.frames > 0 { self.stats.current_line(Instant::now()) } else { last_stats };
        Ok(self.summary.clone())
    }
}
