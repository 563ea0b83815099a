//! Tier 2, opt-in on the robot: smoke tests against the real camera and arm named by a rig file,
//! with every motion inside the rig's safe box. Run:
//!
//!     GRASP_HIL_RIG=/etc/grasp-edge/rig.toml cargo test -p grasp-hil --test tier2 -- --ignored --test-threads 1
//!
//! rig.toml:
//!     config = "/etc/grasp-edge/grasp-edge.toml"   # camera, arm (port, dialect), model, calibration
//!     safe_min = [200.0, -50.0, 60.0]              # mm, robot frame: the arm only moves inside
//!     safe_max = [260.0, 50.0, 120.0]
//! The tests are `#[ignore]`d, so a green `cargo test` elsewhere reports them as ignored, never as
//! passed: it does not claim hardware was tested. Run with `--ignored` but without a rig file,
//! each test fails saying what is missing.

use grasp_devices::arm::{Arm, ArmPose};
use grasp_devices::camera::Frame;
use grasp_edge::config::Config;
use std::time::{Duration, Instant};

struct RigFile {
    config: Config,
    safe_min: [f64; 3],
    safe_max: [f64; 3],
}

fn rig() -> RigFile {
    let path = std::env::var_os("GRASP_HIL_RIG").unwrap_or_else(|| {
        panic!("tier 2 needs GRASP_HIL_RIG: set it to a rig file (see tests/tests/tier2.rs) to run it on the robot")
    });
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("GRASP_HIL_RIG {}: {e}", path.to_string_lossy()));
    let v: toml::Table = text.parse().unwrap_or_else(|e| panic!("{}: {e}", path.to_string_lossy()));
    let get3 = |k: &str| -> [f64; 3] {
        let a = v.get(k).and_then(|x| x.as_array()).unwrap_or_else(|| panic!("rig file: `{k}` = [x, y, z] missing"));
        [0, 1, 2].map(|i| a[i].as_float().unwrap_or_else(|| panic!("rig file: `{k}` must hold numbers")))
    };
    let config_path =
        v.get("config").and_then(|c| c.as_str()).expect("rig file: `config` = path of the grasp-edge config");
    let config = Config::load(std::path::Path::new(config_path)).unwrap();
    let (safe_min, safe_max) = (get3("safe_min"), get3("safe_max"));
    for i in 0..3 {
        assert!(safe_min[i] < safe_max[i], "rig file: safe_min must be below safe_max");
        assert!(
            safe_min[i] >= config.safety.workspace_min[i] && safe_max[i] <= config.safety.workspace_max[i],
            "rig file: the safe box must lie inside the config's safety workspace"
        );
    }
    RigFile { config, safe_min, safe_max }
}

#[test]
#[ignore = "needs GRASP_HIL_RIG (the robot): see tests/tests/tier2.rs"]
fn camera_delivers_frames_of_the_configured_size() {
    let r = rig();
    let mut cam = grasp_devices::config::open_camera(&r.config.camera).expect("open the camera");
    let mut frame = Frame::default();
    let (mut ok, mut bad) = (0, 0);
    let t0 = Instant::now();
    while ok < 30 && t0.elapsed() < Duration::from_secs(20) {
        match cam.next_frame(&mut frame, Duration::from_secs(2)) {
            Ok(()) => ok += 1,
            Err(e) => {
                eprintln!("{e}");
                bad += 1;
            }
        }
    }
    assert_eq!(ok, 30, "{bad} failures");
    assert!(bad <= 2, "{bad} bad frames in 32");
    let calib = grasp_calib::CalibrationFile::load(&r.config.calibration.path).unwrap();
    assert_eq!((frame.width, frame.height), (calib.image.width as usize, calib.image.height as usize));
    let fps = ok as f64 / t0.elapsed().as_secs_f64();
    eprintln!("camera: {} {}x{}, {fps:.1} fps", cam.describe(), frame.width, frame.height);
}

#[test]
#[ignore = "needs GRASP_HIL_RIG (the robot): see tests/tests/tier2.rs"]
fn arm_moves_inside_the_safe_box_and_stops() {
    let r = rig();
    let mut arm = grasp_devices::config::open_arm(&r.config.arm);
    let t0 = Instant::now();
    while !arm.is_connected() {
        arm.poll(Instant::now());
        assert!(t0.elapsed() < Duration::from_secs(10), "arm did not connect");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (start, _) = arm.position().expect("position query");
    eprintln!("arm at {start:?}");
    let (a, b) = (r.safe_min, r.safe_max);
    let centre = ArmPose { x: (a[0] + b[0]) / 2.0, y: (a[1] + b[1]) / 2.0, z: b[2], yaw: 0.0 };
    for p in [centre, ArmPose { x: a[0], ..centre }, ArmPose { x: b[0], y: b[1], ..centre }, centre] {
        let id = arm.move_to(p).unwrap();
        arm.wait_done(id, Duration::from_secs(30)).unwrap();
        let (at, _) = arm.position().unwrap();
        let err = ((at.x - p.x).powi(2) + (at.y - p.y).powi(2) + (at.z - p.z).powi(2)).sqrt();
        assert!(err < 5.0, "asked {p:?}, arm reports {at:?}");
    }
    arm.stop().unwrap();
}

#[test]
#[ignore = "needs GRASP_HIL_RIG (the robot): see tests/tests/tier2.rs"]
fn the_service_runs_on_the_robot_in_stream_mode_for_30_frames() {
    let r = rig();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = r.config.clone();
    cfg.control.mode = grasp_edge::config::ControlMode::Stream;
    cfg.safety.workspace_min = r.safe_min;
    cfg.safety.workspace_max = r.safe_max;
    let path = dir.path().join("hil.toml");
    std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
    let out = std::process::Command::new(grasp_hil::edge_binary())
        .args(["run", "--config", path.to_str().unwrap(), "--frames", "30"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("stats:"), "{err}");
}
