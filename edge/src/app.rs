//! Wiring: a [`Config`] becomes a running [`Pipeline`] (model, camera, calibration, arm). Shared
//! by `grasp-edge run`, `grasp-edge demo`, `check-config` and the tests.

use crate::arm::{Arm, ArmError, ArmOpener, Backoff, LineArm, LineTiming, Reconnecting};
use crate::config::{ArmDialect, CameraConfig, Config};
use crate::control::{PickPlanner, StreamTracker};
use crate::frames::{FrameError, FrameSource, ReplaySource, V4l2Settings, V4l2Source};
use crate::link::SerialLink;
use crate::runtime::{Clock, LoopTiming, Pipeline};
use crate::service::{Notifier, Recorder};
use grasp_calib::{CalibFileError, CalibrationFile};
use grasp_models::detector::GraspDetector;
use grasp_models::{load_backend, BackendError, BackendOptions, GraspModelFile};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("model {path}: {source}")]
    Model { path: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("model {path}: {source}")]
    Backend { path: String, source: BackendError },
    #[error(transparent)]
    Calibration(#[from] CalibFileError),
    #[error(transparent)]
    Camera(#[from] FrameError),
    #[error("{what} {path}: {source}")]
    Output { what: &'static str, path: String, source: std::io::Error },
}

/// Loads and validates the model and the calibration of a config (what `check-config` checks
/// beyond the file itself).
pub fn load_model_and_calibration(cfg: &Config) -> Result<(GraspModelFile, CalibrationFile), SetupError> {
    let model = GraspModelFile::read(&cfg.model.path).map_err(|e| SetupError::Model { path: cfg.model.path.display().to_string(), source: Box::new(e) })?;
    let calib = CalibrationFile::load(&cfg.calibration.path)?;
    Ok((model, calib))
}

pub fn open_camera(cfg: &Config) -> Result<Box<dyn FrameSource>, FrameError> {
    Ok(match &cfg.camera {
        CameraConfig::V4l2 { device, width, height, fps, format } => Box::new(V4l2Source::open(V4l2Settings { device: device.clone(), width: *width, height: *height, fps: *fps, format: *format })?),
        CameraConfig::Replay { dir, fps, looping } => Box::new(ReplaySource::open(dir, *fps, *looping)?),
    })
}

/// The arm of a config, behind reconnection with back-off (not connected yet).
pub fn open_arm(cfg: &Config) -> Reconnecting {
    let a = cfg.arm.clone();
    let port = a.port.display().to_string();
    let timing = LineTiming { reply_timeout: Duration::from_millis(a.reply_timeout_ms), retries: a.retries, done_poll: Duration::from_millis(a.reply_timeout_ms * 3) };
    let seq = Arc::new(AtomicU32::new(1));
    let path = port.clone();
    let opener: ArmOpener = Box::new(move || {
        let link = SerialLink::open(&path, a.baud, Duration::from_millis(500)).map_err(|e| ArmError::LinkLost { port: path.clone(), source: e })?;
        Ok(match a.dialect {
            ArmDialect::GraspLine => Box::new(LineArm::with_counter(Box::new(link), timing, seq.clone())) as Box<dyn Arm>,
            ArmDialect::DobotMagician => Box::new(crate::dobot::MagicianArm::new(Box::new(link), timing.reply_timeout, timing.retries)),
        })
    });
    Reconnecting::new(&port, opener, Backoff { min: Duration::from_millis(cfg.arm.reconnect_min_ms), max: Duration::from_millis(cfg.arm.reconnect_max_ms) })
}

/// Builds the whole pipeline of a config.
pub fn build_pipeline(cfg: &Config, notifier: Box<dyn Notifier>) -> Result<Pipeline, SetupError> {
    let (model, calib) = load_model_and_calibration(cfg)?;
    let threads = (cfg.model.threads > 0).then_some(cfg.model.threads);
    let backend = load_backend(cfg.model.backend, &model, &BackendOptions { threads }).map_err(|source| SetupError::Backend { path: cfg.model.path.display().to_string(), source })?;
    let detector = GraspDetector::new(backend, None);
    log::info!("model {} on {}", cfg.model.path.display(), detector.backend_name());
    let source = open_camera(cfg)?;
    log::info!("camera: {}", source.describe());
    let clock = match &cfg.camera {
        // Replays count time in frames (at their rate, or 30 fps when played as fast as possible),
        // so a replay makes the same decisions at any speed.
        CameraConfig::Replay { fps, .. } => Clock::Frames { period: Duration::from_secs_f64(1.0 / if *fps > 0.0 { *fps } else { 30.0 }), frames: 0 },
        CameraConfig::V4l2 { .. } => Clock::Wall(Instant::now()),
    };
    let timing = LoopTiming {
        frame_timeout: Duration::from_secs(1),
        heartbeat: Duration::from_millis(cfg.arm.heartbeat_ms),
        motion_timeout: Duration::from_millis(cfg.arm.motion_timeout_ms),
        stats_interval: Duration::from_secs_f64(cfg.output.stats_interval_s),
    };
    let grasp_z = calib.table.z + cfg.calibration.grasp_height_mm;
    let mut p = Pipeline::new(
        source,
        detector,
        calib.model(),
        (calib.image.width as usize, calib.image.height as usize),
        grasp_z,
        cfg.model.top_k,
        cfg.safety,
        cfg.control.mode,
        StreamTracker::new(cfg.control.stream),
        PickPlanner::new(cfg.control.pick),
        open_arm(cfg),
        timing,
        clock,
        notifier,
    );
    if let Some(dir) = &cfg.output.annotate_dir {
        std::fs::create_dir_all(dir).map_err(|source| SetupError::Output { what: "annotation directory", path: dir.display().to_string(), source })?;
        p.annotate = Some((dir.clone(), cfg.output.annotate_every));
    }
    if let Some(dir) = &cfg.output.record_dir {
        p.recorder = Some(Recorder::create(dir).map_err(|source| SetupError::Output { what: "flight recorder", path: dir.display().to_string(), source })?);
    }
    Ok(p)
}
