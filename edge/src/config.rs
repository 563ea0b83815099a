//! The service configuration (TOML): every setting of `grasp-edge run`, with defaults for an
//! embedded robot, validation that names the bad field, and paths resolved against the file's
//! directory. `edge/grasp-edge.example.toml` documents every key; a test keeps it loadable.

use crate::arm::ArmPose;
use crate::control::{PickSettings, SafetyLimits, StreamSettings};
use crate::frames::FormatPreference;
use grasp_models::BackendKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub model: ModelConfig,
    pub camera: CameraConfig,
    pub calibration: CalibrationConfig,
    pub arm: ArmConfig,
    #[serde(default)]
    pub control: ControlConfig,
    pub safety: SafetyLimits,
    #[serde(default)]
    pub output: OutputConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The ONNX grasp model (models/README.md).
    pub path: PathBuf,
    #[serde(default = "default_backend", with = "named")]
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

mod named {
    //! Named values (see `grasp_models::names`) as TOML strings, with the same error messages.
    use grasp_models::names::NamedValue;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer, T: NamedValue>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_str())
    }
    pub fn deserialize<'de, D: Deserializer<'de>, T: NamedValue + std::str::FromStr>(d: D) -> Result<T, D::Error>
    where
        T::Err: std::fmt::Display,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "source", rename_all = "lowercase")]
pub enum CameraConfig {
    /// A V4L2 device.
    V4l2 {
        #[serde(default = "default_device")]
        device: PathBuf,
        #[serde(default = "default_width")]
        width: u32,
        #[serde(default = "default_height")]
        height: u32,
        #[serde(default = "default_fps")]
        fps: u32,
        #[serde(default)]
        format: FormatPreference,
    },
    /// Image files or a flight recording, played back.
    Replay {
        dir: PathBuf,
        /// Frames per second (0 = as fast as the pipeline runs).
        #[serde(default)]
        fps: f64,
        #[serde(default = "yes")]
        looping: bool,
    },
}

fn default_device() -> PathBuf {
    PathBuf::from("/dev/video0")
}
fn default_width() -> u32 {
    640
}
fn default_height() -> u32 {
    480
}
fn default_fps() -> u32 {
    30
}
fn yes() -> bool {
    true
}

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

/// Which protocol the arm controller speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArmDialect {
    /// Our documented line protocol (edge/PROTOCOL.md).
    GraspLine,
    /// The Dobot Magician's binary protocol.
    DobotMagician,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmConfig {
    pub dialect: ArmDialect,
    /// Serial device, e.g. /dev/ttyACM0 or the stable /dev/grasp-arm from the udev rule.
    pub port: PathBuf,
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// ACK timeout before a resend, ms.
    #[serde(default = "default_reply_ms")]
    pub reply_timeout_ms: u64,
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Idle heartbeat period, ms.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// Longest wait for one motion to finish, ms.
    #[serde(default = "default_motion_ms")]
    pub motion_timeout_ms: u64,
    /// Reconnection back-off, ms: first delay and cap.
    #[serde(default = "default_backoff_min")]
    pub reconnect_min_ms: u64,
    #[serde(default = "default_backoff_max")]
    pub reconnect_max_ms: u64,
}

fn default_baud() -> u32 {
    115_200
}
fn default_reply_ms() -> u64 {
    150
}
fn default_retries() -> u32 {
    5
}
fn default_heartbeat_ms() -> u64 {
    500
}
fn default_motion_ms() -> u64 {
    20_000
}
fn default_backoff_min() -> u64 {
    200
}
fn default_backoff_max() -> u64 {
    5_000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlMode {
    Stream,
    Pick,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    pub mode: ControlMode,
    pub stream: StreamSettings,
    pub pick: PickSettings,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            mode: ControlMode::Stream,
            stream: StreamSettings { rate_hz: 10.0, smoothing: 0.5, reacquire_mm: 30.0, lost_after_frames: 5 },
            pick: PickSettings { stable_frames: 5, stable_mm: 5.0, approach_mm: 60.0, lift_mm: 80.0, opening_margin_mm: 10.0, place: None },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Seconds between stats lines.
    #[serde(default = "default_stats_s")]
    pub stats_interval_s: f64,
    /// Write an annotated frame (chosen grasp + Q heat-map) every N frames to `annotate_dir`.
    #[serde(default)]
    pub annotate_dir: Option<PathBuf>,
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
        OutputConfig { stats_interval_s: default_stats_s(), annotate_dir: None, annotate_every: default_annotate_every(), record_dir: None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config {path}: field `{field}`: {message}")]
    Invalid { path: String, field: String, message: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, &path.display().to_string(), base)
    }

    /// Parses and validates; relative paths are taken from `base`.
    pub fn parse(text: &str, name: &str, base: &Path) -> Result<Config, ConfigError> {
        let mut c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse { path: name.to_string(), message: e.to_string() })?;
        c.resolve_paths(base);
        c.validate().map_err(|(field, message)| ConfigError::Invalid { path: name.to_string(), field: field.to_string(), message })?;
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
        if let CameraConfig::Replay { dir, .. } = &mut self.camera {
            fix(dir);
        }
        if let Some(d) = &mut self.output.annotate_dir {
            fix(d);
        }
        if let Some(d) = &mut self.output.record_dir {
            fix(d);
        }
    }

    /// Checks values that parse but make no sense, naming the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let f = |field: &str, m: String| Err((field.to_string(), m));
        if self.model.top_k == 0 {
            return f("model.top_k", "must be at least 1".into());
        }
        match &self.camera {
            CameraConfig::V4l2 { width, height, fps, .. } => {
                if *width == 0 || *height == 0 || *width % 2 != 0 {
                    return f("camera.width/height", format!("{width}x{height}: need a positive even width and positive height"));
                }
                if *fps > 240 {
                    return f("camera.fps", format!("{fps} is not a camera rate"));
                }
            }
            CameraConfig::Replay { fps, .. } => {
                if !(fps.is_finite() && *fps >= 0.0) {
                    return f("camera.fps", format!("{fps} must be ≥ 0"));
                }
            }
        }
        if !self.calibration.grasp_height_mm.is_finite() {
            return f("calibration.grasp_height_mm", "must be a number".into());
        }
        let a = &self.arm;
        if a.baud == 0 {
            return f("arm.baud", "must be positive".into());
        }
        for (name, v) in [("arm.reply_timeout_ms", a.reply_timeout_ms), ("arm.heartbeat_ms", a.heartbeat_ms), ("arm.motion_timeout_ms", a.motion_timeout_ms), ("arm.reconnect_min_ms", a.reconnect_min_ms)] {
            if v == 0 {
                return f(name, "must be positive".into());
            }
        }
        if a.reconnect_max_ms < a.reconnect_min_ms {
            return f("arm.reconnect_max_ms", format!("{} is below reconnect_min_ms {}", a.reconnect_max_ms, a.reconnect_min_ms));
        }
        self.safety.validate().map_err(|(fl, m)| (fl.to_string(), m))?;
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
        assert_eq!(c.camera, CameraConfig::V4l2 { device: "/dev/video0".into(), width: 640, height: 480, fps: 30, format: FormatPreference::Auto });
        assert_eq!(c.arm.reply_timeout_ms, 150);
        assert_eq!(c.control.mode, ControlMode::Stream);
        assert_eq!(c.output.stats_interval_s, 5.0);
    }

    #[test]
    fn bad_fields_are_named() {
        let bad = |from: &str, to: &str| Config::parse(&MINIMAL.replace(from, to), "robot.toml", Path::new(".")).unwrap_err().to_string();
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
