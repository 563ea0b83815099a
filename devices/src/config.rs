//! The `[camera]` and `[arm]` sections of the robot's TOML configuration (every key is documented
//! in `edge/grasp-edge.example.toml`), their validation naming the bad field, and the two calls
//! that turn them into devices: [`open_camera`] and [`open_arm`]. The robot service embeds these
//! sections in its own configuration; the calibration wizard reads only them ([`DeviceConfig`]).

use crate::arm::{Arm, ArmError, ArmOpener, Backoff, Reconnecting};
use crate::camera::{FormatPreference, FrameError, FrameSource, ReplaySource, V4l2Settings, V4l2Source};
use crate::dobot::MagicianArm;
use crate::grasp_line::{LineArm, LineTiming};
use crate::link::SerialLink;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

/// A value that parses but makes no sense, with the dotted name of its field
/// (`arm.reconnect_max_ms`): what every validation in the configuration returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct FieldError {
    /// The dotted TOML path of the field, e.g. `camera.fps`.
    pub field: String,
    /// What is wrong with its value.
    pub message: String,
}

impl FieldError {
    /// A refusal of `field` (its dotted TOML path) saying why.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

/// Where frames come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "source", rename_all = "lowercase")]
pub enum CameraConfig {
    /// A V4L2 device.
    V4l2 {
        /// The device node, e.g. /dev/video0 or the stable /dev/grasp-camera from the udev rule.
        #[serde(default = "default_device")]
        device: PathBuf,
        /// Requested frame width, pixels (the driver's answer must match it).
        #[serde(default = "default_width")]
        width: u32,
        /// Requested frame height, pixels.
        #[serde(default = "default_height")]
        height: u32,
        /// Requested frames per second.
        #[serde(default = "default_fps")]
        fps: u32,
        /// Pixel format: auto (YUYV, else MJPEG), yuyv or mjpeg.
        #[serde(default)]
        format: FormatPreference,
    },
    /// Image files or a flight recording, played back.
    Replay {
        /// A directory of PNG/JPEG frames, or a flight recording.
        dir: PathBuf,
        /// Frames per second (0 = as fast as the pipeline runs).
        #[serde(default)]
        fps: f64,
        /// Start again at the first frame after the last.
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

impl CameraConfig {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), FieldError> {
        match self {
            CameraConfig::V4l2 { width, height, fps, .. } => {
                if *width == 0 || *height == 0 || *width % 2 != 0 {
                    return Err(FieldError::new(
                        "camera.width/height",
                        format!("{width}x{height}: need a positive even width and positive height"),
                    ));
                }
                if *fps > 240 {
                    return Err(FieldError::new("camera.fps", format!("{fps} is not a camera rate")));
                }
            }
            CameraConfig::Replay { fps, .. } => {
                if !(fps.is_finite() && *fps >= 0.0) {
                    return Err(FieldError::new("camera.fps", format!("{fps} must be ≥ 0")));
                }
            }
        }
        Ok(())
    }

    /// Makes a relative replay directory relative to `base` (the configuration file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        if let CameraConfig::Replay { dir, .. } = self {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
    }
}

/// Which protocol the arm controller speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArmDialect {
    /// Our documented line protocol (devices/PROTOCOL.md).
    GraspLine,
    /// The Dobot Magician's binary protocol.
    DobotMagician,
}

/// The arm controller: its protocol, port and timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmConfig {
    /// The protocol the controller speaks.
    pub dialect: ArmDialect,
    /// Serial device, e.g. /dev/ttyACM0 or the stable /dev/grasp-arm from the udev rule.
    pub port: PathBuf,
    /// Serial line rate.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// ACK timeout before a resend, ms.
    #[serde(default = "default_reply_ms")]
    pub reply_timeout_ms: u64,
    /// Resends of one command before the link counts as lost.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Idle heartbeat period, ms.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// Longest wait for one motion to finish, ms.
    #[serde(default = "default_motion_ms")]
    pub motion_timeout_ms: u64,
    /// Reconnection back-off, ms: first delay.
    #[serde(default = "default_backoff_min")]
    pub reconnect_min_ms: u64,
    /// Reconnection back-off, ms: longest delay.
    #[serde(default = "default_backoff_max")]
    pub reconnect_max_ms: u64,
}

fn default_baud() -> u32 {
    115_200
}
// The driver's own defaults are the one source of its timing.
fn default_reply_ms() -> u64 {
    LineTiming::default().reply_timeout.as_millis() as u64
}
fn default_retries() -> u32 {
    LineTiming::default().retries
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

impl ArmConfig {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.baud == 0 {
            return Err(FieldError::new("arm.baud", "must be positive"));
        }
        for (name, v) in [
            ("arm.reply_timeout_ms", self.reply_timeout_ms),
            ("arm.heartbeat_ms", self.heartbeat_ms),
            ("arm.motion_timeout_ms", self.motion_timeout_ms),
            ("arm.reconnect_min_ms", self.reconnect_min_ms),
        ] {
            if v == 0 {
                return Err(FieldError::new(name, "must be positive"));
            }
        }
        if self.reconnect_max_ms < self.reconnect_min_ms {
            return Err(FieldError::new(
                "arm.reconnect_max_ms",
                format!("{} is below reconnect_min_ms {}", self.reconnect_max_ms, self.reconnect_min_ms),
            ));
        }
        Ok(())
    }

    /// The grasp-line driver's timing: reply timeout and retries from this section, the DONE poll
    /// period from the protocol (`devices/PROTOCOL.md`, rule 3).
    pub fn line_timing(&self) -> LineTiming {
        LineTiming {
            reply_timeout: Duration::from_millis(self.reply_timeout_ms),
            retries: self.retries,
            ..LineTiming::default()
        }
    }
}

/// Why a configuration file (the robot's, or its device sections) could not be loaded.
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

/// The device sections of a robot configuration file; every other section is ignored, so the
/// calibration wizard opens the robot's camera and arm without loading its model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeviceConfig {
    /// `[camera]`.
    pub camera: CameraConfig,
    /// `[arm]`.
    pub arm: ArmConfig,
}

impl DeviceConfig {
    /// Reads, parses and validates the `[camera]` and `[arm]` sections of `path`; a relative
    /// replay directory is taken from the file's directory.
    pub fn load(path: &Path) -> Result<DeviceConfig, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: name.clone(), source })?;
        let mut c: DeviceConfig =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { path: name.clone(), message: e.to_string() })?;
        c.camera.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        c.camera
            .validate()
            .and_then(|()| c.arm.validate())
            .map_err(|source| ConfigError::Invalid { path: name, source })?;
        Ok(c)
    }
}

/// Opens the configured frame source.
pub fn open_camera(camera: &CameraConfig) -> Result<Box<dyn FrameSource>, FrameError> {
    Ok(match camera {
        CameraConfig::V4l2 { device, width, height, fps, format } => Box::new(V4l2Source::open(V4l2Settings {
            device: device.clone(),
            width: *width,
            height: *height,
            fps: *fps,
            format: *format,
        })?),
        CameraConfig::Replay { dir, fps, looping } => Box::new(ReplaySource::open(dir, *fps, *looping)?),
    })
}

/// The configured arm behind reconnection with back-off (not connected yet: the first
/// [`Reconnecting::poll`] opens it).
pub fn open_arm(arm: &ArmConfig) -> Reconnecting {
    let a = arm.clone();
    let port = a.port.display().to_string();
    let timing = a.line_timing();
    // Shared across reconnects, so late replies of an old link never match a new command.
    let seq = Arc::new(AtomicU32::new(1));
    let path = port.clone();
    let opener: ArmOpener = Box::new(move || {
        let link = SerialLink::open(&path, a.baud, Duration::from_millis(500))
            .map_err(|e| ArmError::LinkLost { port: path.clone(), source: e })?;
        Ok(match a.dialect {
            ArmDialect::GraspLine => {
                Box::new(LineArm::with_counter(Box::new(link), timing, seq.clone())) as Box<dyn Arm>
            }
            ArmDialect::DobotMagician => {
                Box::new(MagicianArm::new(Box::new(link), timing.reply_timeout, timing.retries))
            }
        })
    });
    Reconnecting::new(
        &port,
        opener,
        Backoff { min: Duration::from_millis(arm.reconnect_min_ms), max: Duration::from_millis(arm.reconnect_max_ms) },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_sections_load_alone_with_driver_defaults_and_resolved_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("robot.toml");
        // Other sections (the model, safety) are none of the devices' business.
        std::fs::write(&path, "[model]\npath = \"x.onnx\"\n[camera]\nsource = \"replay\"\ndir = \"frames\"\n[arm]\ndialect = \"grasp-line\"\nport = \"/dev/ttyACM0\"\n").unwrap();
        let c = DeviceConfig::load(&path).unwrap();
        assert_eq!(c.camera, CameraConfig::Replay { dir: dir.path().join("frames"), fps: 0.0, looping: true });
        let t = c.arm.line_timing();
        let d = LineTiming::default();
        assert_eq!((t.reply_timeout, t.retries, t.done_poll), (d.reply_timeout, d.retries, d.done_poll));
        assert_eq!(c.arm.reply_timeout_ms, 150);
    }

    #[test]
    fn bad_device_fields_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("robot.toml");
        std::fs::write(
            &path,
            "[camera]\nsource = \"v4l2\"\nwidth = 641\n[arm]\ndialect = \"grasp-line\"\nport = \"/dev/ttyACM0\"\n",
        )
        .unwrap();
        let e = DeviceConfig::load(&path).unwrap_err();
        assert!(matches!(&e, ConfigError::Invalid { source, .. } if source.field == "camera.width/height"), "{e}");
        assert!(e.to_string().contains("robot.toml") && e.to_string().contains("641x480"), "{e}");
        std::fs::write(&path, "[camera]\nsource = \"v4l2\"\n[arm]\ndialect = \"grasp-line\"\nport = \"/dev/ttyACM0\"\nreconnect_max_ms = 1\n").unwrap();
        let e = DeviceConfig::load(&path).unwrap_err();
        assert!(matches!(&e, ConfigError::Invalid { source, .. } if source.field == "arm.reconnect_max_ms"), "{e}");
    }
}
