//! The service configuration (TOML): every setting of `grasp-edge run`, with defaults for an
//! embedded robot, validation that names the bad field, and paths resolved against the file's
//! directory. `edge/grasp-edge.example.toml` documents every key; a test keeps it loadable.

use crate::control::{PickSettings, SafetyLimits, StreamSettings};
use grasp_devices::arm::ArmPose;
pub use grasp_devices::config::{ArmConfig, ArmDialect, CameraConfig, FieldError};
use grasp_models::BackendKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole service configuration (`edge/grasp-edge.example.toml` documents every key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[model]`.
    pub model: ModelConfig,
    /// `[camera]`.
    pub camera: CameraConfig,
    /// `[calibration]`.
    pub calibration: CalibrationConfig,
    /// `[arm]`.
    pub arm: ArmConfig,
    /// `[control]`.
    #[serde(default)]
    pub control: ControlConfig,
    /// `[safety]`: limits every command must satisfy.
    pub safety: SafetyLimits,
    /// `[output]`.
    #[serde(default)]
    pub output: OutputConfig,
}

/// `[model]`: the grasp model and how to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The ONNX grasp model (models/README.md).
    pub path: PathBuf,
    /// `auto`, `tract` or `torch`.
    #[serde(default = "default_backend")]
    pub backend: BackendKind,
    /// CPU threads for inference (0 = the backend's choice).
    #[serde(default)]
    pub threads: usize,
    /// Grasp candidates decoded per frame (the safety filter and tracker choose among them).
    #[serde(default = "default_top_k")]
    pub top_k: usize,
}

fn default_backend() -> BackendKind {
    BackendKind::Auto
}
fn default_top_k() -> usize {
    5
}

/// `[calibration]`: the image → robot transform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationConfig {
    /// The calibration file written by `grasp-calib` (camera intrinsics, pose, table height).
    pub path: PathBuf,
    /// Height of the grasp point above the table plane, mm (fingertips below the object's top).
    #[serde(default = "default_grasp_height")]
    pub grasp_height_mm: f64,
}

fn default_grasp_height() -> f64 {
    10.0
}

/// What the arm does with the grasps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlMode {
    /// Follow the best grasp continuously (TRACK targets).
    Stream,
    /// Pick a stable grasp, then place or go home.
    Pick,
}

/// `[control]`: the mode and each mode's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Stream or pick.
    pub mode: ControlMode,
    /// `[control.stream]`.
    pub stream: StreamSettings,
    /// `[control.pick]`.
    pub pick: PickSettings,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            mode: ControlMode::Stream,
            stream: StreamSettings { rate_hz: 10.0, smoothing: 0.5, reacquire_mm: 30.0, lost_after_frames: 5 },
            pick: PickSettings {
                stable_frames: 5,
                stable_mm: 5.0,
                approach_mm: 60.0,
                lift_mm: 80.0,
                opening_margin_mm: 10.0,
                place: None,
            },
        }
    }
}

/// `[output]`: stats, annotated frames, flight recorder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Seconds between stats lines.
    #[serde(default = "default_stats_s")]
    pub stats_interval_s: f64,
    /// Write an annotated frame (chosen grasp + Q heat-map) every N frames to `annotate_dir`.
    #[serde(default)]
    pub annotate_dir: Option<PathBuf>,
    /// Every how many frames an annotated frame is written.
    #[serde(default = "default_annotate_every")]
    pub annotate_every: u64,
    /// Flight recorder: frames, grasps and commands of the session, replayable.
    #[serde(default)]
    pub record_dir: Option<PathBuf>,
}

fn default_stats_s() -> f64 {
    5.0
}
fn default_annotate_every() -> u64 {
    30
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            stats_interval_s: default_stats_s(),
            annotate_dir: None,
            annotate_every: default_annotate_every(),
            record_dir: None,
        }
    }
}

/// Why a configuration file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape.
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (it names the line and the key).
        message: String,
    },
    /// A value parses but makes no sense.
    #[error("config {path}: {source}")]
    Invalid {
        /// The file.
        path: String,
        /// The field and why.
        source: FieldError,
    },
}

impl Config {
    /// Reads, parses and validates `path`; relative paths are taken from its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, &path.display().to_string(), base)
    }

    /// Parses and validates; relative paths are taken from `base`.
    pub fn parse(text: &str, name: &str, base: &Path) -> Result<Config, ConfigError> {
        let mut c: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: name.to_string(), message: e.to_string() })?;
        c.resolve_paths(base);
        c.validate().map_err(|source| ConfigError::Invalid { path: name.to_string(), source })?;
        Ok(c)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.model.path);
        fix(&mut self.calibration.path);
        self.camera.resolve_paths(base);
        if let Some(d) = &mut self.output.annotate_dir {
            fix(d);
        }
        if let Some(d) = &mut self.output.record_dir {
            fix(d);
        }
    }

    /// Checks values that parse but make no sense, naming the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        let f = |field: &str, m: String| Err(FieldError::new(field, m));
        if self.model.top_k == 0 {
            return f("model.top_k", "must be at least 1".into());
        }
        self.camera.validate()?;
        if !self.calibration.grasp_height_mm.is_finite() {
            return f("calibration.grasp_height_mm", "must be a number".into());
        }
        self.arm.validate()?;
        self.safety.validate()?;
        let s = &self.control.stream;
        if !(s.rate_hz.is_finite() && s.rate_hz > 0.0) {
            return f("control.stream.rate_hz", format!("{} must be positive", s.rate_hz));
        }
        if !(0.0..=1.0).contains(&s.smoothing) || s.smoothing == 0.0 {
            return f("control.stream.smoothing", format!("{} must be within (0, 1]", s.smoothing));
        }
        let p = &self.control.pick;
        if p.stable_frames == 0 {
            return f("control.pick.stable_frames", "must be at least 1".into());
        }
        if p.approach_mm < 0.0 || p.lift_mm < 0.0 {
            return f("control.pick.approach_mm/lift_mm", "must be ≥ 0".into());
        }
        if let Some(place) = &p.place {
            if !self.safety.contains(place) {
                return f("control.pick.place", format!("{place:?} is outside the safety workspace"));
            }
        }
        if self.output.annotate_every == 0 {
            return f("output.annotate_every", "must be at least 1".into());
        }
        if !(self.output.stats_interval_s.is_finite() && self.output.stats_interval_s > 0.0) {
            return f("output.stats_interval_s", "must be positive".into());
        }
        Ok(())
    }

    /// Where a picked object is put (`[control.pick] place`), if anywhere.
    pub fn place(&self) -> Option<ArmPose> {
        self.control.pick.place
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[model]
path = "model.onnx"
[camera]
source = "v4l2"
[calibration]
path = "calib.toml"
[arm]
dialect = "grasp-line"
port = "/dev/ttyACM0"
[safety]
workspace_min = [100.0, -200.0, -50.0]
workspace_max = [350.0, 200.0, 200.0]
max_opening_mm = 80.0
min_quality = 0.3
"#;

    #[test]
    fn minimal_config_gets_embedded_defaults_and_resolved_paths() {
        let c = Config::parse(MINIMAL, "test.toml", Path::new("/etc/grasp-edge")).unwrap();
        assert_eq!(c.model.path, PathBuf::from("/etc/grasp-edge/model.onnx"));
        assert_eq!(c.model.backend, BackendKind::Auto);
        assert_eq!(
            c.camera,
            CameraConfig::V4l2 {
                device: "/dev/video0".into(),
                width: 640,
                height: 480,
                fps: 30,
                format: grasp_devices::camera::FormatPreference::Auto
            }
        );
        assert_eq!(c.arm.reply_timeout_ms, 150);
        assert_eq!(c.control.mode, ControlMode::Stream);
        assert_eq!(c.output.stats_interval_s, 5.0);
    }

    #[test]
    fn bad_fields_are_named() {
        let bad = |from: &str, to: &str| {
            Config::parse(&MINIMAL.replace(from, to), "robot.toml", Path::new(".")).unwrap_err().to_string()
        };
        let e = bad("max_opening_mm = 80.0", "max_opening_mm = -1.0");
        assert!(e.contains("robot.toml") && e.contains("safety.max_opening_mm"), "{e}");
        let e = bad("workspace_max = [350.0, 200.0, 200.0]", "workspace_max = [350.0, -300.0, 200.0]");
        assert!(e.contains("y: min -200"), "{e}");
        let e = bad("dialect = \"grasp-line\"", "dialect = \"ur5\"");
        assert!(e.contains("unknown variant `ur5`") && e.contains("grasp-line"), "{e}");
        let e = bad("[model]", "[model]\nbatch = 4");
        assert!(e.contains("unknown field `batch`"), "{e}");
        let e = bad("path = \"model.onnx\"", "path = \"model.onnx\"\nbackend = \"cuda\"");
        assert!(e.contains("cuda") && e.contains("tract"), "{e}");
        let e = bad("port = \"/dev/ttyACM0\"", "port = \"/dev/ttyACM0\"\nreconnect_max_ms = 10");
        assert!(e.contains("arm.reconnect_max_ms"), "{e}");
    }

    #[test]
    fn the_example_config_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let c = Config::load(&dir.join("grasp-edge.example.toml")).unwrap();
        assert_eq!(c.arm.dialect, ArmDialect::GraspLine);
    }
}
