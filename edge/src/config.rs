//! The service configuration (TOML): every setting of `grasp-edge run`, with defaults for an
//! embedded robot, validation that names the bad field, and paths resolved against the file's
//! directory. `edge/grasp-edge.example.toml` documents every key; a test keeps it loadable.

use crate::control::{PickSettings, SafetyLimits, StreamSettings, MAX_REACH_MM};
use grasp_calib::ViewRegion;
use grasp_devices::arm::{ArmCall, ArmPose};
pub use grasp_devices::config::{ArmConfig, ArmDialect, CameraConfig, ConfigError, FieldError};
use grasp_models::contract::MAX_MM_PER_PX;
use grasp_models::{BackendKind, BackendOptions};
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
    /// `[view]`: what the model sees.
    #[serde(default)]
    pub view: ViewConfig,
}

/// What the model is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewMode {
    /// The camera image, centre-cropped and resized to the model's input (`center_crop`).
    Camera,
    /// The table view: the table region warped through the calibration to a top-down image at
    /// the model's training scale (`calib/src/view.rs`).
    Table,
}

/// `[view]`: the camera image or the table view, and the table region the view shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewConfig {
    /// `camera` or `table`; unset: `table` for a model whose `grasp.image_fit` is `table_view`,
    /// else `camera`.
    #[serde(default)]
    pub mode: Option<ViewMode>,
    /// Centre of the viewed region, robot x and y in mm; unset: the centre of the `[safety]`
    /// workspace box.
    #[serde(default)]
    pub center_mm: Option<[f64; 2]>,
    /// Side of the square region, mm; unset: the workspace box's larger horizontal side.
    #[serde(default)]
    pub size_mm: Option<f64>,
    /// Table mm per model input pixel; unset: the model's declared training scale
    /// (`grasp.mm_per_px`). Needed for models that declare none (contract version 1).
    #[serde(default)]
    pub mm_per_px: Option<f64>,
}

impl ViewConfig {
    /// The region shown: the configured one, or the workspace box's.
    pub fn region(&self, safety: &SafetyLimits) -> ViewRegion {
        let (lo, hi) = (safety.workspace_min, safety.workspace_max);
        ViewRegion {
            center_mm: self.center_mm.unwrap_or([(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0]),
            size_mm: self.size_mm.unwrap_or((hi[0] - lo[0]).max(hi[1] - lo[1])),
        }
    }

    /// The field a region error is about: the configured one, or the workspace box it defaults to.
    pub fn region_field(&self) -> &'static str {
        match (self.center_mm, self.size_mm) {
            (Some(_), _) => "view.center_mm",
            (None, Some(_)) => "view.size_mm",
            (None, None) => "safety.workspace_min",
        }
    }

    fn validate(&self) -> Result<(), FieldError> {
        if let Some(c) = self.center_mm {
            if !c.iter().all(|v| v.is_finite() && v.abs() <= MAX_REACH_MM) {
                return Err(FieldError::new("view.center_mm", format!("{c:?} must be mm within ±{MAX_REACH_MM}")));
            }
        }
        for (field, v, max) in [
            ("view.size_mm", self.size_mm, 2.0 * MAX_REACH_MM),
            ("view.mm_per_px", self.mm_per_px, MAX_MM_PER_PX as f64),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0 && v <= max) {
                    return Err(FieldError::new(field, format!("{v} must be a positive number up to {max}")));
                }
            }
        }
        Ok(())
    }
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
    /// Tests only (`run --pad-infer-ms`, never from the file): every inference is padded to at
    /// least this long, to exercise the live loop with a slow model on a fast one.
    #[serde(skip)]
    pub pad_infer_ms: u64,
}

/// The most grasp candidates decoded per frame.
pub const MAX_TOP_K: usize = 100;

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

/// How the loop meets the camera (README, "Edge runtime").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoopMode {
    /// Capture, perception and decisions on their own threads; decisions always on the freshest
    /// frame, older ones dropped (counted as stale). The default for cameras.
    Live,
    /// One frame after the other, every frame processed in order: a replay gives the same commands
    /// at any speed. The default for replays.
    Lockstep,
}

impl std::str::FromStr for LoopMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "live" => Ok(LoopMode::Live),
            "lockstep" => Ok(LoopMode::Lockstep),
            other => Err(format!("unknown loop mode `{other}` (expected live or lockstep)")),
        }
    }
}

/// `[control]`: the mode and each mode's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Stream or pick.
    pub mode: ControlMode,
    /// Live or lockstep; unset: live for a camera, lockstep for a replay ([`Config::loop_mode`]).
    #[serde(default)]
    pub loop_mode: Option<LoopMode>,
    /// `[control.stream]`.
    pub stream: StreamSettings,
    /// `[control.pick]`.
    pub pick: PickSettings,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            mode: ControlMode::Stream,
            loop_mode: None,
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

    /// The loop mode: `control.loop_mode`, or live for a camera and lockstep for a replay.
    pub fn loop_mode(&self) -> LoopMode {
        self.control.loop_mode.unwrap_or(match self.camera {
            CameraConfig::V4l2 { .. } => LoopMode::Live,
            CameraConfig::Replay { .. } => LoopMode::Lockstep,
        })
    }

    /// Checks values that parse but make no sense, naming the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        let f = |field: &str, m: String| Err(FieldError::new(field, m));
        if !(1..=MAX_TOP_K).contains(&self.model.top_k) {
            return f("model.top_k", format!("{} must be within 1..={MAX_TOP_K}", self.model.top_k));
        }
        // 0 is the backend's choice; any other count is checked as the backend will.
        let threads = (self.model.threads > 0).then_some(self.model.threads);
        BackendOptions { threads }.validate().map_err(|e| FieldError::new("model.threads", e.to_string()))?;
        self.camera.validate()?;
        if !(self.calibration.grasp_height_mm.is_finite() && self.calibration.grasp_height_mm.abs() <= MAX_REACH_MM) {
            return f(
                "calibration.grasp_height_mm",
                format!("{} must be a number of mm within ±{MAX_REACH_MM}", self.calibration.grasp_height_mm),
            );
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
        let reach = MAX_REACH_MM;
        let mm = |field: &str, v: f64, max: f64| {
            if v.is_finite() && (0.0..=max).contains(&v) {
                Ok(())
            } else {
                f(field, format!("{v} must be a number of mm within [0, {max}]"))
            }
        };
        mm("control.stream.reacquire_mm", s.reacquire_mm, reach)?;
        let p = &self.control.pick;
        if p.stable_frames == 0 {
            return f("control.pick.stable_frames", "must be at least 1".into());
        }
        mm("control.pick.stable_mm", p.stable_mm, reach)?;
        mm("control.pick.opening_margin_mm", p.opening_margin_mm, self.safety.max_opening_mm)?;
        // An approach or lift taller than the workspace would make every pick leave the box.
        let height = self.safety.workspace_max[2] - self.safety.workspace_min[2];
        mm("control.pick.approach_mm", p.approach_mm, height)?;
        mm("control.pick.lift_mm", p.lift_mm, height)?;
        if let Some(place) = &p.place {
            self.safety
                .gate(&ArmCall::Move(*place))
                .map_err(|r| FieldError::new("control.pick.place", format!("{place:?}: {r}")))?;
        }
        if self.output.annotate_every == 0 {
            return f("output.annotate_every", "must be at least 1".into());
        }
        if !(self.output.stats_interval_s.is_finite() && self.output.stats_interval_s > 0.0) {
            return f("output.stats_interval_s", "must be positive".into());
        }
        self.view.validate()
    }

    /// Checks what needs the calibration's table height: grasps at `table_z + grasp_height_mm`
    /// must lie inside the workspace box, and so must the approach and the lift above them.
    pub fn check_against_table(&self, table_z: f64) -> Result<(), FieldError> {
        let grasp_z = table_z + self.calibration.grasp_height_mm;
        let (lo, hi) = (self.safety.workspace_min[2], self.safety.workspace_max[2]);
        if !(lo..=hi).contains(&grasp_z) {
            return Err(FieldError::new(
                "calibration.grasp_height_mm",
                format!(
                    "grasps at z = {grasp_z} mm (table {table_z} + {}) are outside the workspace's z [{lo}, {hi}]",
                    self.calibration.grasp_height_mm
                ),
            ));
        }
        let p = &self.control.pick;
        for (field, up) in [("control.pick.approach_mm", p.approach_mm), ("control.pick.lift_mm", p.lift_mm)] {
            if grasp_z + up > hi {
                return Err(FieldError::new(
                    field,
                    format!(
                        "{up} mm above grasps at z = {grasp_z} mm reaches z = {} mm, above the workspace's {hi}",
                        grasp_z + up
                    ),
                ));
            }
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
    use proptest::prelude::*;

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

    /// MINIMAL with a `[control]` section whose pick settings are `pick` (TOML lines).
    fn with_pick(pick: &str) -> Result<Config, ConfigError> {
        let control = format!(
            "[control]\nmode = \"pick\"\n[control.stream]\nrate_hz = 10.0\nsmoothing = 0.5\nreacquire_mm = 30.0\nlost_after_frames = 5\n[control.pick]\n{pick}\n"
        );
        Config::parse(&format!("{MINIMAL}{control}"), "robot.toml", Path::new("."))
    }

    #[test]
    fn values_that_would_move_the_arm_wrongly_are_refused_by_name() {
        let base = |over: &[(&str, &str)]| {
            let mut kv: Vec<(String, String)> = [
                ("stable_frames", "3"),
                ("stable_mm", "5.0"),
                ("approach_mm", "60.0"),
                ("lift_mm", "80.0"),
                ("opening_margin_mm", "10.0"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            for (k, v) in over {
                kv.retain(|(key, _)| key != k);
                kv.push((k.to_string(), v.to_string()));
            }
            let text: Vec<String> = kv.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            with_pick(&text.join("\n"))
        };
        assert!(base(&[]).is_ok());
        let field = |over: &[(&str, &str)]| match base(over) {
            Err(ConfigError::Invalid { source, .. }) => source.field,
            other => panic!("{over:?} accepted or refused otherwise: {other:?}"),
        };
        // The box is 250 mm tall (z -50..200): an approach of 250 mm would leave it on every pick.
        assert_eq!(field(&[("approach_mm", "260.0")]), "control.pick.approach_mm");
        for bad in ["nan", "inf", "1e300", "-1.0"] {
            assert_eq!(field(&[("approach_mm", bad)]), "control.pick.approach_mm", "{bad}");
            assert_eq!(field(&[("lift_mm", bad)]), "control.pick.lift_mm", "{bad}");
        }
        assert_eq!(field(&[("stable_mm", "nan")]), "control.pick.stable_mm");
        assert_eq!(field(&[("stable_mm", "-1.0")]), "control.pick.stable_mm");
        assert_eq!(field(&[("opening_margin_mm", "-5.0")]), "control.pick.opening_margin_mm");
        assert_eq!(field(&[("place", "{ x = 200.0, y = 0.0, z = 50.0, yaw = 1e300 }")]), "control.pick.place");
        assert_eq!(field(&[("place", "{ x = 200.0, y = 0.0, z = 250.0, yaw = 0.0 }")]), "control.pick.place");
        assert!(base(&[("place", "{ x = 200.0, y = 0.0, z = 50.0, yaw = 90.0 }")]).is_ok());

        let bad = |from: &str, to: &str| match Config::parse(&MINIMAL.replace(from, to), "robot.toml", Path::new(".")) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{to} accepted"),
        };
        let e = bad("workspace_min = [100.0, -200.0, -50.0]", "workspace_min = [100.0, -200.0, -50.0, 7.0]");
        assert!(e.contains("invalid length 4") && e.contains("[x, y, z]"), "{e}");
        let e = bad("workspace_max = [350.0, 200.0, 200.0]", "workspace_max = [350.0, 200.0, 1e300]");
        assert!(e.contains("safety.workspace_min/workspace_max"), "{e}");
        let e = bad("path = \"model.onnx\"", "path = \"model.onnx\"\nthreads = 4294967296");
        assert!(e.contains("model.threads") && e.contains("4 per core"), "{e}");
        let e = bad("path = \"model.onnx\"", "path = \"model.onnx\"\ntop_k = 0");
        assert!(e.contains("model.top_k"), "{e}");
        let e = bad("path = \"calib.toml\"", "path = \"calib.toml\"\ngrasp_height_mm = 1e300");
        assert!(e.contains("calibration.grasp_height_mm"), "{e}");
        let stream = with_pick("stable_frames = 3\nstable_mm = 5.0\napproach_mm = 60.0\nlift_mm = 80.0\nopening_margin_mm = 10.0")
            .map(|_| ())
            .and_then(|()| {
                let text = format!("{MINIMAL}[control]\nmode = \"stream\"\n[control.stream]\nrate_hz = 10.0\nsmoothing = 0.5\nreacquire_mm = nan\nlost_after_frames = 5\n[control.pick]\nstable_frames = 3\nstable_mm = 5.0\napproach_mm = 60.0\nlift_mm = 80.0\nopening_margin_mm = 10.0\n");
                Config::parse(&text, "robot.toml", Path::new(".")).map(|_| ())
            });
        assert!(
            matches!(stream, Err(ConfigError::Invalid { source, .. }) if source.field == "control.stream.reacquire_mm")
        );
    }

    #[test]
    fn approach_and_lift_must_stay_in_the_box_above_the_table() {
        let c = with_pick(
            "stable_frames = 3\nstable_mm = 5.0\napproach_mm = 150.0\nlift_mm = 80.0\nopening_margin_mm = 10.0",
        )
        .unwrap();
        // Grasps at z = 0 + 10: 160 ≤ 200 is fine; with the table at 60, 70 + 150 = 220 is not.
        assert_eq!(c.check_against_table(0.0), Ok(()));
        assert_eq!(c.check_against_table(60.0).unwrap_err().field, "control.pick.approach_mm");
        assert_eq!(c.check_against_table(-100.0).unwrap_err().field, "calibration.grasp_height_mm");
    }

    #[test]
    fn the_example_config_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let c = Config::load(&dir.join("grasp-edge.example.toml")).unwrap();
        assert_eq!(c.arm.dialect, ArmDialect::GraspLine);
    }

    proptest! {
        #![proptest_config(grasp_fuzz::config())]
        /// Any configuration text is a valid configuration or an error naming the file.
        #[test]
        fn fuzz_edge_config(text in grasp_fuzz::mutated_text(include_str!("../grasp-edge.example.toml"))) {
            if let Ok(c) = Config::parse(&text, "robot.toml", Path::new("/etc/grasp-edge")) {
                prop_assert!(c.validate().is_ok());
            }
        }
    }
}
