//! The wizard end to end: the simulated arm on a real pseudo-terminal (the edge crate's driver and
//! simulator), a synthetic camera drawing the marker where the arm holds it through a known
//! camera, and the `grasp-calib` binary's subcommands.

use grasp_calib::marker::MarkerSpec;
use grasp_calib::CalibrationFile;
use grasp_calib_cli::synthetic::{demo_truth, MarkerCamera};
use grasp_calib_cli::{run_wizard, Operator, WizardError, WizardMode, WizardSettings};
use grasp_devices::grasp_line::sim::{serve_pty, SimController, SimServer};
use grasp_devices::grasp_line::LineArm;
use grasp_devices::link::SerialLink;
use nalgebra::Point3;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Script {
    confirm: bool,
    said: Vec<String>,
    /// Manual mode: poses the "operator" jogs the simulated arm to.
    jog: Vec<[f64; 4]>,
    arm: Option<Arc<Mutex<SimController>>>,
}

impl Operator for Script {
    fn say(&mut self, text: &str) {
        self.said.push(text.to_string());
    }
    fn confirm(&mut self, _q: &str) -> bool {
        self.confirm
    }
    fn jogged(&mut self, point: usize, _of: usize) -> bool {
        match (self.jog.get(point - 1), &self.arm) {
            (Some(p), Some(arm)) => {
                arm.lock().unwrap().pose = *p;
                true
            }
            _ => false,
        }
    }
}

fn settings(mode: WizardMode) -> WizardSettings {
    WizardSettings {
        mode,
        box_min: [150.0, -80.0, 0.0],
        box_max: [350.0, 120.0, 0.0],
        grid: (4, 3),
        heights: vec![20.0, 120.0],
        marker_offset: [0.0, 0.0, 25.0],
        marker: MarkerSpec::default(),
        table_z: 0.0,
        max_rms_px: 1.0,
        manual_points: 12,
        motion_timeout: Duration::from_secs(5),
        settle_frames: 1,
    }
}

fn rig(
    seed: u64,
    offset: [f64; 3],
) -> (Arc<Mutex<SimController>>, SimServer, LineArm, MarkerCamera, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("arm");
    let state = Arc::new(Mutex::new(SimController::new(Instant::now())));
    let server = serve_pty(&link, state.clone(), Default::default()).unwrap();
    let port = SerialLink::open(link.to_str().unwrap(), 115_200, Duration::from_millis(500)).unwrap();
    let arm = LineArm::new(Box::new(port), Default::default(), 1);
    let camera = MarkerCamera::new(demo_truth(), 640, 480, state.clone(), offset, MarkerSpec::default().colour, seed);
    (state, server, arm, camera, dir)
}

/// Largest table-plane error (mm) of `solved` against the true camera over the box.
fn table_error_mm(solved: &grasp_calib::CameraModel) -> f64 {
    let truth = demo_truth();
    let mut worst = 0.0f64;
    for x in [150.0, 200.0, 250.0, 300.0, 350.0] {
        for y in [-80.0, 0.0, 60.0, 120.0] {
            let p = Point3::new(x, y, 0.0);
            let (u, v) = truth.project(&p).unwrap();
            let q = solved.pixel_to_robot(u, v, None).unwrap();
            worst = worst.max((q - p).norm());
        }
    }
    worst
}

#[test]
fn auto_mode_recovers_the_camera_through_the_simulated_arm() {
    let s = settings(WizardMode::Auto);
    let (state, _server, mut arm, mut camera, _dir) = rig(1, s.marker_offset);
    let mut op = Script { confirm: false, said: vec![], jog: vec![], arm: None };
    let r = run_wizard(&s, &mut camera, &mut arm, &mut op).unwrap();
    assert_eq!(r.samples.len(), 24, "misses: {:?}", r.misses);
    assert!(r.good && r.save);
    assert!(r.solution.rms_reprojection_px < 0.1, "{}", r.solution.rms_reprojection_px);
    let err = table_error_mm(&r.solution.model);
    assert!(err < 1.0, "table-plane error {err:.2} mm");
    // The arm really went through the grid: 24 moves executed by the controller.
    assert_eq!(state.lock().unwrap().motions().len(), 24);
    let img =
        grasp_calib_cli::verification_image(&r.last_frame, &r.solution.model, &r.samples, s.box_min, s.box_max, 0.0);
    assert_eq!(img.dimensions(), (640, 480));
    // Some pixels are the grid's blue and some the residual circles' green.
    assert!(img.pixels().any(|p| p.0 == [40, 120, 255]) && img.pixels().any(|p| p.0 == [0, 255, 0]));
}

#[test]
fn manual_mode_reads_the_jogged_positions() {
    let s = settings(WizardMode::Manual);
    let (state, _server, mut arm, mut camera, _dir) = rig(2, s.marker_offset);
    let jog: Vec<[f64; 4]> = (0..12)
        .map(|i| {
            [
                160.0 + 17.0 * i as f64,
                -70.0 + 15.0 * ((i * 5) % 12) as f64,
                if i % 2 == 0 { 30.0 } else { 110.0 },
                30.0 * (i % 3) as f64,
            ]
        })
        .collect();
    let mut op = Script { confirm: false, said: vec![], jog, arm: Some(state) };
    let r = run_wizard(&s, &mut camera, &mut arm, &mut op).unwrap();
    assert_eq!(r.samples.len(), 12);
    assert!(r.good);
    let err = table_error_mm(&r.solution.model);
    assert!(err < 1.5, "table-plane error {err:.2} mm");
}

#[test]
fn refusals_and_a_poor_fit_saved_only_on_request() {
    // One height only: refused before moving.
    let mut s = settings(WizardMode::Auto);
    s.heights = vec![50.0, 50.0];
    let (_st, _sv, mut arm, mut camera, _d) = rig(3, s.marker_offset);
    let mut op = Script { confirm: false, said: vec![], jog: vec![], arm: None };
    assert!(matches!(run_wizard(&s, &mut camera, &mut arm, &mut op), Err(WizardError::Heights(1))));

    // A marker of another colour than configured: never visible, refused with advice.
    let mut s = settings(WizardMode::Auto);
    s.marker.colour = [0, 255, 0];
    let e = run_wizard(&s, &mut camera, &mut arm, &mut op).unwrap_err().to_string();
    assert!(e.contains("only 0 usable points") && e.contains("in view"), "{e}");

    // The operator measured the marker offset wrong (40 mm off sideways, yaw varies): poor fit.
    let mut s = settings(WizardMode::Manual);
    s.marker_offset = [40.0, 0.0, 25.0];
    let (state, _sv, mut arm, _cam, _d2) = rig(4, s.marker_offset);
    let mut camera =
        MarkerCamera::new(demo_truth(), 640, 480, state.clone(), [0.0, 0.0, 25.0], MarkerSpec::default().colour, 4);
    let jog: Vec<[f64; 4]> = (0..12)
        .map(|i| {
            [
                160.0 + 17.0 * i as f64,
                -70.0 + 15.0 * ((i * 5) % 12) as f64,
                if i % 2 == 0 { 30.0 } else { 110.0 },
                60.0 * (i % 3) as f64,
            ]
        })
        .collect();
    let mut op = Script { confirm: false, said: vec![], jog: jog.clone(), arm: Some(state.clone()) };
    let r = run_wizard(&s, &mut camera, &mut arm, &mut op).unwrap();
    assert!(!r.good && !r.save, "rms {}", r.solution.rms_reprojection_px);
    let mut op = Script { confirm: true, said: vec![], jog, arm: Some(state) };
    let r = run_wizard(&s, &mut camera, &mut arm, &mut op).unwrap();
    assert!(!r.good && r.save, "saved because the operator insisted");
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_grasp-calib")
}

#[test]
fn cli_simulate_check_project_solve_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let cal = dir.path().join("cal.toml");
    let out = Command::new(bin())
        .args([
            "wizard",
            "--simulate",
            "--heights",
            "20,120",
            "--box-min",
            "150,-80,0",
            "--box-max",
            "350,120,0",
            "--out",
            cal.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("cal.png").exists(), "verification image next to the file");
    let file = CalibrationFile::load(&cal).unwrap();
    assert!(table_error_mm(&file.model()) < 1.0);

    let out = Command::new(bin()).args(["check", cal.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("RMS reprojection"), "{stdout}");
    // Every sampled pixel (every 4th of 640×480, plus the last row and column) has a ray.
    assert!(stdout.contains("lens model: 19481 of 19481 sampled pixels"), "{stdout}");
    // The same camera with a barrel distortion that folds back before the image's corners: the
    // check fails and says where.
    let mut folded = CalibrationFile::load(&cal).unwrap();
    (folded.intrinsics.k1, folded.intrinsics.k2, folded.intrinsics.k3) = (-0.5, 0.0, 0.0);
    let bad = dir.path().join("folded.toml");
    std::fs::write(&bad, folded.to_toml()).unwrap();
    let out = Command::new(bin()).args(["check", bad.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("folds back inside the image"), "{stderr}");
    assert!(stderr.contains("first at (0, 0)") && stderr.contains("corners"), "{stderr}");

    // project: the true camera's pixel of a table point maps back to it, as JSON.
    let (u, v) = demo_truth().project(&Point3::new(270.0, 40.0, 0.0)).unwrap();
    let out =
        Command::new(bin()).args(["project", cal.to_str().unwrap(), &u.to_string(), &v.to_string()]).output().unwrap();
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        (p["x"].as_f64().unwrap() - 270.0).abs() < 1.0
            && (p["y"].as_f64().unwrap() - 40.0).abs() < 1.0
            && p["z"].as_f64().unwrap().abs() < 1e-6,
        "{p}"
    );
    let out = Command::new(bin())
        .args(["project", cal.to_str().unwrap(), &u.to_string(), &v.to_string(), "--z", "100"])
        .output()
        .unwrap();
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!((p["z"].as_f64().unwrap() - 100.0).abs() < 1e-6);

    // solve from a CSV of exact pairs.
    let truth = demo_truth();
    let mut csv = String::from("u,v,x,y,z\n");
    for (i, z) in [0.0, 60.0, 150.0].iter().enumerate() {
        for x in [160.0, 240.0, 330.0] {
            for y in [-60.0, 30.0, 110.0] {
                let p = Point3::new(x + i as f64 * 3.0, y, *z);
                let (u, v) = truth.project(&p).unwrap();
                csv += &format!("{u},{v},{},{},{}\n", p.x, p.y, p.z);
            }
        }
    }
    let pairs = dir.path().join("pairs.csv");
    std::fs::write(&pairs, &csv).unwrap();
    let solved = dir.path().join("solved.toml");
    let out = Command::new(bin())
        .args([
            "solve",
            pairs.to_str().unwrap(),
            "--table-z",
            "0",
            "--image-size",
            "640x480",
            "--out",
            solved.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(table_error_mm(&CalibrationFile::load(&solved).unwrap().model()) < 0.1);
    std::fs::write(&pairs, csv.replace("u,v,x,y,z", "u,v,x,y")).unwrap();
    let out = Command::new(bin())
        .args([
            "solve",
            pairs.to_str().unwrap(),
            "--table-z",
            "0",
            "--image-size",
            "640x480",
            "--out",
            solved.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("header must be `u,v,x,y,z`"));

    // Planar mode: points on the table only, intrinsics typed in (exact, no distortion rig).
    let mut flat = demo_truth();
    (flat.intrinsics.k1, flat.intrinsics.k2) = (0.0, 0.0);
    let mut csv = String::from("u,v,x,y,z\n");
    for x in [160.0, 220.0, 280.0, 340.0] {
        for y in [-60.0, 20.0, 100.0] {
            let (u, v) = flat.project(&Point3::new(x, y, 0.0)).unwrap();
            csv += &format!("{u},{v},{x},{y},0\n");
        }
    }
    std::fs::write(&pairs, &csv).unwrap();
    let planar = dir.path().join("planar.toml");
    let out = Command::new(bin())
        .args([
            "solve",
            pairs.to_str().unwrap(),
            "--table-z",
            "0",
            "--image-size",
            "640x480",
            "--intrinsics",
            "620,620,322,236",
            "--out",
            planar.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = CalibrationFile::load(&planar).unwrap().model();
    let (u, v) = flat.project(&Point3::new(250.0, 40.0, 0.0)).unwrap();
    assert!((m.pixel_to_robot(u, v, None).unwrap() - Point3::new(250.0, 40.0, 0.0)).norm() < 0.1);
    let out = Command::new(bin())
        .args([
            "solve",
            pairs.to_str().unwrap(),
            "--table-z",
            "0",
            "--image-size",
            "640x480",
            "--out",
            planar.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "full mode refuses points all on one plane");
    let out = Command::new(bin())
        .args([
            "solve",
            pairs.to_str().unwrap(),
            "--table-z",
            "0",
            "--image-size",
            "640x480",
            "--intrinsics",
            "620,620",
            "--out",
            planar.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("fx,fy,cx,cy"));

    // import-camera-info replaces the intrinsics and keeps the pose.
    let yaml = dir.path().join("cam.yaml");
    std::fs::write(&yaml, "image_width: 640\nimage_height: 480\ncamera_name: c920\ncamera_matrix:\n  rows: 3\n  cols: 3\n  data: [600, 0, 320, 0, 601, 240, 0, 0, 1]\ndistortion_model: plumb_bob\ndistortion_coefficients:\n  rows: 1\n  cols: 5\n  data: [0.1, 0, 0, 0, 0]\n").unwrap();
    let out = Command::new(bin())
        .args(["import-camera-info", yaml.to_str().unwrap(), "--out", cal.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let f = CalibrationFile::load(&cal).unwrap();
    assert_eq!((f.intrinsics.fx, f.intrinsics.fy, f.intrinsics.k1), (600.0, 601.0, 0.1));
    assert_eq!(f.extrinsics, file.extrinsics);
}

/// `solve` and `check` on hostile input: clear refusals, never a panic, a hang or a saved garbage fit.
#[test]
fn cli_solve_refuses_absurd_input_and_poor_fits() {
    let dir = tempfile::tempdir().unwrap();
    let truth = demo_truth();
    let mut rows = vec![];
    for x in [160.0, 240.0, 330.0] {
        for y in [-60.0, 30.0, 110.0] {
            let p = Point3::new(x, y, 0.0);
            let (u, v) = truth.project(&p).unwrap();
            rows.push((u, v, p));
        }
    }
    let csv = |rows: &[(f64, f64, Point3<f64>)]| {
        let mut s = String::from("u,v,x,y,z\n");
        for (u, v, p) in rows {
            s += &format!("{u},{v},{},{},{}\n", p.x, p.y, p.z);
        }
        s
    };
    let pairs = dir.path().join("pairs.csv");
    let out = dir.path().join("cal.toml");
    let k = truth.intrinsics;
    let known = format!("{},{},{},{}", k.fx, k.fy, k.cx, k.cy);
    let solve = |extra: &[&str]| {
        let r = Command::new(bin())
            .args(["solve", pairs.to_str().unwrap(), "--table-z", "0", "--image-size", "640x480"])
            .args(["--out", out.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        (r.status.success(), String::from_utf8_lossy(&r.stderr).into_owned())
    };
    std::fs::write(&pairs, csv(&rows)).unwrap();
    // Planar data with the distortion-free part of the intrinsics: the lens distorts, so the fit
    // misses by some tenths of a pixel; over a strict --max-rms-px it is not saved without
    // --force, and `check` flags it.
    let (ok, err) = solve(&["--intrinsics", &known, "--max-rms-px", "0.001"]);
    assert!(!ok && err.contains("NOT saved") && err.contains("--force"), "{err}");
    assert!(!out.exists());
    let (ok, err) = solve(&["--intrinsics", &known, "--force", "--max-rms-px", "0.001"]);
    assert!(ok, "{err}");
    let c = Command::new(bin()).args(["check", out.to_str().unwrap(), "--max-rms-px", "0.001"]).output().unwrap();
    assert!(!c.status.success() && String::from_utf8_lossy(&c.stderr).contains("exceeds"));
    let (ok, err) = solve(&["--intrinsics", &format!("0,{},{},{}", k.fy, k.cx, k.cy)]);
    assert!(!ok && err.contains("must be positive"), "{err}");
    let (ok, err) = solve(&["--intrinsics", &format!("nan,{},{},{}", k.fy, k.cx, k.cy)]);
    assert!(!ok && err.contains("fx = NaN is not a finite number"), "{err}");
    rows[4].0 = 1e300;
    std::fs::write(&pairs, csv(&rows)).unwrap();
    for extra in [&[][..], &["--intrinsics", &known][..]] {
        let (ok, err) = solve(extra);
        assert!(!ok && err.contains("out of range") && !err.contains("panicked"), "{err}");
    }
}
