//! The `grasp-edge` binary as an operator meets it: `check-config` naming bad fields, `run` on a
//! replay with the simulated arm on a real pseudo-terminal, SIGTERM → STOP → exit 0, and the
//! simulated Magician driven by the public `pydobot` package.

use grasp_devices::grasp_line::codec::Command as Cmd;
use grasp_devices::grasp_line::sim::{serve_pty, SimController};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_grasp-edge")
}

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo")
}

/// The demo config with absolute paths, a given arm port, and extra text appended.
fn write_config(dir: &Path, port: &Path, mode: &str, looping: bool) -> PathBuf {
    let text = std::fs::read_to_string(demo_dir().join("demo.toml")).unwrap();
    let d = demo_dir();
    let text = text
        .replace("\"../../models/", &format!("\"{}/../models/", d.parent().unwrap().display()))
        .replace("dir = \"frames\"", &format!("dir = \"{}/frames\"", d.display()))
        .replace("path = \"calibration.toml\"", &format!("path = \"{}/calibration.toml\"", d.display()))
        .replace("port = \"/run/grasp-edge/sim-arm\"", &format!("port = \"{}\"", port.display()))
        .replace("mode = \"pick\"", &format!("mode = \"{mode}\""))
        .replace("looping = true", &format!("looping = {looping}"))
        .replace("backend = \"auto\"", "backend = \"tract\"");
    let path = dir.join("robot.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_config_accepts_the_demo_and_names_a_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), Path::new("/dev/null"), "pick", true);
    let out = Command::new(bin()).args(["check-config", cfg.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok (model"));

    let text = std::fs::read_to_string(&cfg).unwrap().replace("min_quality = 0.3", "min_quality = 1.5");
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(bin()).args(["check-config", cfg.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("safety.min_quality") && err.contains("robot.toml"), "{err}");

    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("min_quality = 1.5", "min_quality = 0.3")
        .replace("ggcnn-p-rgb-224.onnx", "missing.onnx");
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(bin()).args(["check-config", cfg.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.onnx"));
}

#[test]
fn sigterm_sends_stop_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("arm");
    let state = Arc::new(Mutex::new(SimController::new(Instant::now())));
    let mut server = serve_pty(&link, state.clone(), Default::default()).unwrap();
    let cfg = write_config(dir.path(), &link, "stream", true);
    let mut child = Command::new(bin())
        .args(["run", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the loop is commanding the arm, then ask it to stop like systemd does.
    let t0 = Instant::now();
    while state.lock().unwrap().motions().is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(60), "no command within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent_term = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(sent_term.elapsed() < Duration::from_secs(10), "still running 10 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "exit {status:?}\n{stderr}");
    server.shutdown();
    let s = state.lock().unwrap();
    assert!(matches!(s.executed.last().map(|e| &e.command), Some(Cmd::Stop)), "last command {:?}", s.executed.last());
    assert!(s.executed.iter().any(|e| matches!(e.command, Cmd::Track { .. })));
    assert!(stderr.contains("signal received"), "{stderr}");
}

fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    std::env::var_os("GRASP_PYTHON").map(PathBuf::from).unwrap_or(if venv.exists() { venv } else { "python3".into() })
}

#[test]
fn pydobot_drives_the_simulated_magician_over_a_pty() {
    let py = python();
    let ok = Command::new(&py).args(["-c", "import pydobot"]).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        let msg = format!("pydobot test skipped: {} cannot import pydobot (run scripts/setup.sh)", py.display());
        assert!(std::env::var("GRASP_REQUIRE_REFEREE").as_deref() != Ok("1"), "{msg}");
        eprintln!("{msg}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("magician");
    let sim = Arc::new(Mutex::new(grasp_devices::dobot::sim::MagicianSim::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = grasp_devices::dobot::sim::serve_magician_pty(&link, sim.clone(), stop.clone()).unwrap();
    let script = format!(
        "from pydobot import Dobot\n\
         d = Dobot(port='{}')\n\
         d.move_to(220.0, -30.0, 10.0, 15.0, wait=True)\n\
         d.grip(True)\n\
         d.move_to(180.0, 40.0, 60.0, 0.0, wait=True)\n\
         print('pose', *[round(v, 2) for v in d.pose()[:4]])\n\
         d.close()\n",
        link.display()
    );
    let out = Command::new(&py).args(["-c", &script]).output().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    server.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pydobot failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("pose 180.0 40.0 60.0 0.0"), "{stdout}");
    let s = sim.lock().unwrap();
    // pydobot also queues its four speed/acceleration setters at connection.
    let motions: Vec<u8> = s
        .executed
        .iter()
        .map(|f| f.id)
        .filter(|id| {
            [grasp_devices::dobot::codec::SET_PTP_CMD, grasp_devices::dobot::codec::END_EFFECTOR_GRIPPER].contains(id)
        })
        .collect();
    assert_eq!(
        motions,
        vec![
            grasp_devices::dobot::codec::SET_PTP_CMD,
            grasp_devices::dobot::codec::END_EFFECTOR_GRIPPER,
            grasp_devices::dobot::codec::SET_PTP_CMD
        ],
        "two moves and a grip, each once"
    );
    assert!(s.gripped);
    assert_eq!(s.bad_packets, 0);
}
