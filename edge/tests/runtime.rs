//! The whole loop on the shipped model and the bundled demo frames: through a real pseudo-terminal
//! with injected faults, replay determinism with the flight recorder, refusals of bad inputs,
//! systemd notifications, and shutdown.

use grasp_devices::arm::{Arm, ArmCall, ArmOpener, Backoff, Reconnecting, RecordingArm};
use grasp_devices::grasp_line::codec::Command;
use grasp_devices::grasp_line::sim::{serve_pty, Faults, SimController};
use grasp_edge::config::{CameraConfig, Config, ControlMode};
use grasp_edge::control::Target;
use grasp_edge::runtime::{Candidate, Pipeline};
use grasp_edge::service::{Notifier, Recorder, Stats};
use grasp_models::Grasp;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo")
}

/// The demo configuration, replaying the bundled frames once (no loop).
fn demo_config() -> Config {
    let mut cfg = Config::load(&demo_dir().join("demo.toml")).unwrap();
    cfg.model.backend = grasp_models::BackendKind::Tract;
    cfg.camera = CameraConfig::Replay { dir: demo_dir().join("frames"), fps: 10.0, looping: false };
    cfg
}

fn recording_arm(calls: Arc<Mutex<Vec<ArmCall>>>) -> Reconnecting {
    let opener: ArmOpener = Box::new(move || Ok(Box::new(RecordingArm::new(calls.clone())) as Box<dyn Arm>));
    Reconnecting::new("memory", opener, Backoff { min: Duration::from_millis(1), max: Duration::from_millis(1) })
}

#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<&'static str>>>);
impl Notifier for Events {
    fn ready(&mut self) {
        self.0.lock().unwrap().push("ready");
    }
    fn watchdog(&mut self) {
        self.0.lock().unwrap().push("watchdog");
    }
    fn stopping(&mut self) {
        self.0.lock().unwrap().push("stopping");
    }
    fn status(&mut self, _: &str) {}
}

fn as_protocol(c: &ArmCall) -> Option<Command> {
    match c {
        ArmCall::Move(p) => Some(Command::Move { x: p.x, y: p.y, z: p.z, yaw: p.yaw }),
        ArmCall::Grip(o) => Some(Command::Grip { opening: *o }),
        ArmCall::Home => Some(Command::Home),
        ArmCall::Track(p, o) => Some(Command::Track { x: p.x, y: p.y, z: p.z, yaw: p.yaw, opening: *o }),
        ArmCall::Stop => Some(Command::Stop),
        ArmCall::Session => None,
    }
}

/// Two decimals, as on the wire.
fn wire(c: &Command) -> String {
    grasp_devices::grasp_line::codec::encode_command(0, c)
}

#[test]
fn pick_mode_through_a_faulty_pty_sends_every_command_exactly_once_then_stop() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("arm");
    let state = Arc::new(Mutex::new(SimController::new(Instant::now())));
    let faults = Faults {
        drop_in: 0.1,
        drop_out: 0.1,
        garble_in: 0.2,
        garble_out: 0.1,
        nak_busy: 0.1,
        max_delay: Duration::from_millis(5),
        seed: 11,
        ..Default::default()
    };
    let mut server = serve_pty(&link, state.clone(), faults).unwrap();
    let mut cfg = demo_config();
    cfg.arm.port = link.clone();
    cfg.arm.reply_timeout_ms = 40;
    cfg.arm.retries = 10;
    let events = Events::default();
    let mut p = grasp_edge::app::build_pipeline(&cfg, Box::new(events.clone())).unwrap();
    p.keep_commands = true;
    let summary = p.run(&AtomicBool::new(false), None).unwrap();
    server.shutdown();
    assert_eq!(summary.frames, 16);
    assert!(summary.picks >= 1, "the bundled frames hold a stable grasp");
    let sent: Vec<String> = summary.commands.iter().filter_map(as_protocol).map(|c| wire(&c)).collect();
    let s = state.lock().unwrap();
    let executed: Vec<String> =
        s.executed.iter().filter(|e| !matches!(e.command, Command::Hello { .. })).map(|e| wire(&e.command)).collect();
    assert_eq!(executed, sent, "the controller executed exactly what the host sent, once each, in order");
    assert_eq!(sent.last().map(String::as_str), Some(wire(&Command::Stop).as_str()), "STOP on shutdown");
    assert!(s.rejected_lines > 0, "faults were injected");
    let ev = events.0.lock().unwrap();
    assert_eq!(ev.first(), Some(&"ready"));
    assert_eq!(ev.last(), Some(&"stopping"));
    assert!(ev.iter().filter(|e| **e == "watchdog").count() >= 16, "watchdog pinged from the loop");
}

#[test]
fn replaying_a_recording_reproduces_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let run = |cfg: &Config, record: Option<&Path>| {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut p = grasp_edge::app::build_pipeline(cfg, Box::new(grasp_edge::service::NoNotifier)).unwrap();
        p.parts.arm = recording_arm(calls.clone());
        if let Some(r) = record {
            p.recorder = Some(Recorder::create(r).unwrap());
        }
        p.run(&AtomicBool::new(false), None).unwrap();
        let c = calls.lock().unwrap().clone();
        c
    };
    let mut cfg = demo_config();
    cfg.control.mode = ControlMode::Stream;
    let first = run(&cfg, Some(&rec));
    assert!(first.iter().filter(|c| matches!(c, ArmCall::Track(..))).count() >= 4, "{first:?}");
    cfg.camera = CameraConfig::Replay { dir: rec.clone(), fps: 10.0, looping: false };
    let second = run(&cfg, None);
    assert_eq!(first, second);
    // The recording's own log lists the same commands, frame by frame.
    let events = Recorder::read_events(&rec).unwrap();
    assert_eq!(events.len(), 16);
    let logged: usize = events.iter().map(|e| e.commands.len()).sum();
    assert_eq!(logged, first.iter().filter(|c| !matches!(c, ArmCall::Session | ArmCall::Stop)).count());
}

#[test]
fn garbage_grasps_and_poses_outside_the_workspace_are_refused_not_sent() {
    let cfg = demo_config();
    let calib = grasp_calib::CalibrationFile::load(&cfg.calibration.path).unwrap();
    let camera = calib.model();
    let g = |x: f32, y: f32, width: f32, quality: f32| Grasp { x, y, angle: 0.3, width, quality };
    let grasps = [
        g(240.0, 240.0, 60.0, 0.9),      // centre of the table: fine
        g(f32::NAN, 240.0, 60.0, 0.9),   // a NaN map
        g(240.0, 240.0, 60.0, f32::NAN), // NaN quality
        g(0.0, 0.0, 60.0, 0.9),          // image corner: outside the workspace box
        g(240.0, 240.0, 400.0, 0.9),     // wider than the gripper
        g(240.0, 240.0, 60.0, 0.05),     // below the minimum quality
    ];
    let mut stats = Stats::default();
    let mut out: Vec<Candidate> = Vec::new();
    Pipeline::to_targets(&camera, 10.0, &cfg.safety, &grasps, &mut stats, &mut out);
    assert_eq!(out.len(), 1, "{:?}", out.iter().map(|c| c.target).collect::<Vec<_>>());
    let t: Target = out[0].target;
    assert!((t.pose.x - 250.0).abs() < 1.0 && t.pose.y.abs() < 1.0 && (t.pose.z - 10.0).abs() < 1e-9, "{t:?}");
    let refused: u64 = stats.refusals.values().sum();
    assert_eq!(refused, 5, "{:?}", stats.refusals);
    assert_eq!(stats.refusals.get("outside-workspace"), Some(&1));
    assert_eq!(stats.refusals.get("opening"), Some(&1));
    assert_eq!(stats.refusals.get("low-quality"), Some(&1));
}

#[test]
fn corrupt_frames_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let frames: Vec<_> = std::fs::read_dir(demo_dir().join("frames")).unwrap().map(|e| e.unwrap().path()).collect();
    let mut sorted = frames.clone();
    sorted.sort();
    for f in sorted.iter().take(3) {
        std::fs::copy(f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("002b.jpg"), b"\xff\xd8\xff garbage, not a JPEG").unwrap();
    let mut cfg = demo_config();
    cfg.camera = CameraConfig::Replay { dir: dir.path().to_path_buf(), fps: 0.0, looping: false };
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut p = grasp_edge::app::build_pipeline(&cfg, Box::new(grasp_edge::service::NoNotifier)).unwrap();
    p.parts.arm = recording_arm(calls);
    let summary = p.run(&AtomicBool::new(false), None).unwrap();
    assert_eq!(summary.frames, 3);
    assert_eq!(p.stats.corrupt_frames, 1);
}

#[test]
fn a_frame_of_another_size_than_the_calibration_stops_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    image::RgbImage::from_pixel(640, 480, image::Rgb([200, 200, 200])).save(dir.path().join("a.png")).unwrap();
    let mut cfg = demo_config();
    cfg.camera = CameraConfig::Replay { dir: dir.path().to_path_buf(), fps: 0.0, looping: false };
    let mut p = grasp_edge::app::build_pipeline(&cfg, Box::new(grasp_edge::service::NoNotifier)).unwrap();
    p.parts.arm = recording_arm(Arc::new(Mutex::new(Vec::new())));
    let e = p.run(&AtomicBool::new(false), None).unwrap_err().to_string();
    assert!(e.contains("640x480") && e.contains("480x480"), "{e}");
}

/// A pick whose approach would leave the workspace box is refused whole, before its first motion
/// (the gripper does not even open), and counted; the configuration check refuses such settings,
/// so the planner is changed behind its back here.
#[test]
fn a_pick_plan_that_leaves_the_box_is_refused_before_its_first_motion() {
    let mut cfg = demo_config();
    cfg.control.mode = ControlMode::Pick;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut p = grasp_edge::app::build_pipeline(&cfg, Box::new(grasp_edge::service::NoNotifier)).unwrap();
    p.parts.arm = recording_arm(calls.clone());
    p.parts.planner.settings.approach_mm = 10_000.0;
    p.run(&AtomicBool::new(false), None).unwrap();
    let sent: Vec<ArmCall> = calls.lock().unwrap().clone();
    assert!(sent.iter().all(|c| matches!(c, ArmCall::Session | ArmCall::Stop)), "{sent:?}");
    assert!(p.stats.refusals.get("outside-workspace").copied().unwrap_or(0) >= 1, "{:?}", p.stats.refusals);
}

/// The stats line reports the glass-to-command latency: the first command of a frame against the
/// frame's capture time (a replay's delivery time here).
#[test]
fn glass_to_command_latency_is_reported() {
    let mut cfg = demo_config();
    cfg.control.mode = ControlMode::Stream;
    let mut p = grasp_edge::app::build_pipeline(&cfg, Box::new(grasp_edge::service::NoNotifier)).unwrap();
    p.parts.arm = recording_arm(Arc::new(Mutex::new(Vec::new())));
    let summary = p.run(&AtomicBool::new(false), None).unwrap();
    assert!(summary.command_count > 1, "{}", summary.stats_line);
    let (p50, p99) = p.stats.latency_percentiles();
    assert!(p50 > 0.0 && p99 >= p50, "{p50} {p99}");
    assert!(summary.stats_line.contains(&format!("latency {p50:.1}/{p99:.1} ms")), "{}", summary.stats_line);
}
