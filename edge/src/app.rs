//! Wiring: a [`Config`] becomes a running [`Pipeline`] (model, camera, calibration, arm). Shared
//! by `grasp-edge run`, `grasp-edge demo`, `check-config` and the tests.

use crate::config::ViewMode;
use crate::config::{CameraConfig, Config, LoopMode};
use crate::control::{PickPlanner, StreamTracker};
use crate::runtime::{Clock, ControlParts, LoopTiming, Pipeline, PipelineParts};
use crate::service::{Notifier, Recorder};
use grasp_calib::{CalibFileError, CalibrationFile};
use grasp_calib::{TableView, ViewRegion};
use grasp_devices::camera::FrameError;
use grasp_devices::config::{open_arm, open_camera};
use grasp_models::contract::ImageFit;
use grasp_models::detector::GraspDetector;
use grasp_models::{load_backend, BackendError, BackendOptions, GraspModelFile, InferenceBackend, ModelInfo};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a configuration could not be turned into a running pipeline.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The model file is unreadable or breaks the contract.
    #[error("model {path}: {source}")]
    Model {
        /// The model file.
        path: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend cannot run the model.
    #[error("model {path}: {source}")]
    Backend {
        /// The model file.
        path: String,
        /// Why.
        source: BackendError,
    },
    /// The configuration does not fit the calibration's table.
    #[error("config with calibration {calibration}: {source}")]
    Config {
        /// The calibration file.
        calibration: String,
        /// The field and why.
        source: grasp_devices::config::FieldError,
    },
    /// The calibration file is unreadable or implausible.
    #[error(transparent)]
    Calibration(#[from] CalibFileError),
    /// The camera could not be opened.
    #[error(transparent)]
    Camera(#[from] FrameError),
    /// An output directory could not be created.
    #[error("{what} {path}: {source}")]
    Output {
        /// Which output.
        what: &'static str,
        /// Its directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Loads and validates the model and the calibration of a config (what `check-config` checks
/// beyond the file itself).
pub fn load_model_and_calibration(cfg: &Config) -> Result<(GraspModelFile, CalibrationFile), SetupError> {
    let model = GraspModelFile::read(&cfg.model.path)
        .map_err(|e| SetupError::Model { path: cfg.model.path.display().to_string(), source: Box::new(e) })?;
    let calib = CalibrationFile::load(&cfg.calibration.path)?;
    cfg.check_against_table(calib.table.z)
        .map_err(|source| SetupError::Config { calibration: cfg.calibration.path.display().to_string(), source })?;
    Ok((model, calib))
}

/// The table view the config asks for, if any (see `[view]` in the example configuration):
/// refused with the field to fix when the model cannot run on what is asked, when no scale is
/// known, or when the region is not seen by the calibrated camera.
pub fn table_view(cfg: &Config, info: &ModelInfo, calib: &CalibrationFile) -> Result<Option<TableView>, SetupError> {
    let field = |field: &str, message: String| SetupError::Config {
        calibration: cfg.calibration.path.display().to_string(),
        source: grasp_devices::config::FieldError::new(field, message),
    };
    let model_takes_view = info.image_fit == ImageFit::TableView;
    let mode = cfg.view.mode.unwrap_or(if model_takes_view { ViewMode::Table } else { ViewMode::Camera });
    if mode == ViewMode::Camera {
        if model_takes_view {
            return Err(field(
                "view.mode",
                format!(
                    "`camera`, but the model {} takes the table view (grasp.image_fit = table_view)",
                    cfg.model.path.display()
                ),
            ));
        }
        return Ok(None);
    }
    let region = cfg.view.region(&cfg.safety);
    let view = view_of(calib, info, region, cfg.view.mm_per_px).map_err(|e| match e {
        ViewSetupError::NoScale => field(
            "view.mm_per_px",
            format!(
                "unset, and the model {} declares no training scale (grasp.mm_per_px): set the table mm per model pixel",
                cfg.model.path.display()
            ),
        ),
        ViewSetupError::Region(e) => field(cfg.view.region_field(), format!("the table view's region: {e}")),
    })?;
    Ok(Some(view))
}

/// Why a table view cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ViewSetupError {
    /// Neither the model nor the caller gives a scale.
    #[error("the model declares no training scale (grasp.mm_per_px) and none was given")]
    NoScale,
    /// The region is not seen by the camera.
    #[error(transparent)]
    Region(#[from] grasp_calib::ViewError),
}

/// The S×S table view of `region` for the model `info` through the camera of `calib`, at the
/// given scale or the model's own (`grasp.mm_per_px`); a region too large for S pixels at that
/// scale is scaled down with a warning (no tiling).
pub fn view_of(
    calib: &CalibrationFile,
    info: &ModelInfo,
    region: ViewRegion,
    mm_per_px: Option<f64>,
) -> Result<TableView, ViewSetupError> {
    let trained = mm_per_px.or(info.mm_per_px.map(f64::from)).ok_or(ViewSetupError::NoScale)?;
    let size = info.input_size;
    let (m, ratio) = region.fit(size, trained);
    if ratio > 1.15 {
        log::warn!(
            "the table region is {:.0} mm across but the model sees {size} px at {trained} mm/px = {:.0} mm: the view is scaled to {m:.3} mm/px, so objects look {:.0} % smaller than in training (view a smaller region, or train at a coarser scale)",
            region.size_mm,
            size as f64 * trained,
            (1.0 - 1.0 / ratio) * 100.0
        );
    }
    let image = (calib.image.width as usize, calib.image.height as usize);
    let view = TableView::new(&calib.model(), image, region.center_mm, size, m)?;
    log::info!(
        "table view: {size}x{size} px at {m:.3} mm/px centred on ({:.0}, {:.0}) mm",
        region.center_mm[0],
        region.center_mm[1]
    );
    Ok(view)
}

/// Builds the whole pipeline of a config.
pub fn build_pipeline(cfg: &Config, notifier: Box<dyn Notifier>) -> Result<Pipeline, SetupError> {
    let (model, calib) = load_model_and_calibration(cfg)?;
    let view = table_view(cfg, &model.info, &calib)?.map(Arc::new);
    let threads = (cfg.model.threads > 0).then_some(cfg.model.threads);
    let backend = load_backend(cfg.model.backend, &model, &BackendOptions { threads })
        .map_err(|source| SetupError::Backend { path: cfg.model.path.display().to_string(), source })?;
    let backend = match cfg.model.pad_infer_ms {
        0 => backend,
        ms => Box::new(PaddedBackend { inner: backend, at_least: Duration::from_millis(ms) }),
    };
    let detector = GraspDetector::new(backend, None);
    log::info!("model {} on {}", cfg.model.path.display(), detector.backend_name());
    let source = open_camera(&cfg.camera)?;
    log::info!("camera: {}", source.describe());
    let loop_mode = cfg.loop_mode();
    log::info!("loop: {loop_mode:?}");
    let clock = match (&cfg.camera, loop_mode) {
        // A lockstep replay counts time in frames (at its rate, or 30 fps when played as fast as
        // possible), so it makes the same decisions at any speed. A live loop skips frames: wall time.
        (CameraConfig::Replay { fps, .. }, LoopMode::Lockstep) => {
            Clock::Frames { period: Duration::from_secs_f64(1.0 / if *fps > 0.0 { *fps } else { 30.0 }), frames: 0 }
        }
        _ => Clock::Wall(Instant::now()),
    };
    let timing = LoopTiming {
        frame_timeout: Duration::from_secs(1),
        heartbeat: Duration::from_millis(cfg.arm.heartbeat_ms),
        motion_timeout: Duration::from_millis(cfg.arm.motion_timeout_ms),
        stats_interval: Duration::from_secs_f64(cfg.output.stats_interval_s),
    };
    let grasp_z = calib.table.z + cfg.calibration.grasp_height_mm;
    let mut p = Pipeline::new(PipelineParts {
        source,
        detector,
        calibrated_size: (calib.image.width as usize, calib.image.height as usize),
        top_k: cfg.model.top_k,
        loop_mode,
        control: ControlParts {
            camera: calib.model(),
            view,
            grasp_z,
            safety: cfg.safety,
            mode: cfg.control.mode,
            tracker: StreamTracker::new(cfg.control.stream),
            planner: PickPlanner::new(cfg.control.pick),
            arm: open_arm(&cfg.arm),
            timing,
            clock,
            notifier,
        },
    });

    if let Some(dir) = &cfg.output.annotate_dir {
        std::fs::create_dir_all(dir).map_err(|source| SetupError::Output {
            what: "annotation directory",
            path: dir.display().to_string(),
            source,
        })?;
        p.control.annotate = Some((dir.clone(), cfg.output.annotate_every));
    }
    if let Some(dir) = &cfg.output.record_dir {
        p.control.recorder = Some(Recorder::create(dir).map_err(|source| SetupError::Output {
            what: "flight recorder",
            path: dir.display().to_string(),
            source,
        })?);
    }
    Ok(p)
}

/// A backend whose every inference takes at least `at_least` (`run --pad-infer-ms`, for tests of
/// the live loop with a slow model).
struct PaddedBackend {
    inner: Box<dyn InferenceBackend>,
    at_least: Duration,
}

impl InferenceBackend for PaddedBackend {
    fn name(&self) -> String {
        format!("{} padded to {:?}", self.inner.name(), self.at_least)
    }
    fn info(&self) -> &grasp_models::ModelInfo {
        self.inner.info()
    }
    fn infer(&mut self, input: &[f32], out: &mut grasp_models::decode::GraspMaps) -> Result<(), BackendError> {
        let t0 = Instant::now();
        self.inner.infer(input, out)?;
        std::thread::sleep(self.at_least.saturating_sub(t0.elapsed()));
        Ok(())
    }
}
