//! Hardware-in-the-loop tests for grasp-edge, in tiers (as probe-rs does):
//! - tier 1 (`tests/tier1.rs`, runs in CI): the real `grasp-edge` binary as a subprocess with a real
//!   config, a replay camera, and the simulated controller on a real pseudo-terminal with fault
//!   injection; a fake `NOTIFY_SOCKET` stands in for systemd;
//! - tier 2 (`tests/tier2.rs`, opt-in): smoke tests against the real camera and arm named by a rig
//!   file (`GRASP_HIL_RIG`), motions confined to its safe box; skipped with a message elsewhere.
//!
//! This library holds what both tiers share: finding the built binary, writing rigs (configs,
//! calibrations, tiny models), the fake systemd socket, and reading a process's memory.
#![warn(missing_docs)]

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `grasp-edge` binary of this build (cargo builds it for the edge crate's own tests).
pub fn edge_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>/deps/..");
    let bin = dir.join("grasp-edge");
    assert!(
        bin.exists(),
        "{} not built: run `cargo test --workspace` (or `cargo build -p grasp-edge`) first",
        bin.display()
    );
    bin
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fake systemd notification socket: what the service sends, datagram by datagram. A thread
/// reads it continuously, as systemd does (a datagram socket whose queue is full blocks the sender).
pub struct NotifySocket {
    /// The socket's path (what `NOTIFY_SOCKET` is set to).
    pub path: PathBuf,
    messages: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl NotifySocket {
    /// Binds the socket in `dir` and starts reading it.
    pub fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = messages.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => sink.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        if std::sync::Arc::strong_count(&sink) == 1 {
                            return; // the test is done with it
                        }
                    }
                    Err(_) => return,
                }
            }
        });
        NotifySocket { path, messages }
    }

    /// Messages received so far.
    pub fn drain(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(150));
        self.messages.lock().unwrap().clone()
    }
}

/// Resident set size of a process in KiB (Linux).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Writes a grasp-edge config (TOML) for a replay camera and a grasp-line arm on `port`;
/// `extra` is appended to the [safety]/[control] defaults below by replacing whole sections.
pub struct Rig {
    /// The ONNX model.
    pub model: PathBuf,
    /// The calibration file.
    pub calibration: PathBuf,
    /// The replay directory.
    pub frames: PathBuf,
    /// The arm's serial port.
    pub port: PathBuf,
    /// `stream` or `pick`.
    pub mode: &'static str,
    /// Safety box, lower corner.
    pub workspace_min: [f64; 3],
    /// Safety box, upper corner.
    pub workspace_max: [f64; 3],
    /// Widest gripper opening.
    pub max_opening_mm: f64,
    /// Loop the replay.
    pub looping: bool,
    /// Flight recorder directory.
    pub record_dir: Option<PathBuf>,
}

impl Rig {
    /// The demo's model, frames, calibration and safety limits (480x480 frames, shipped model);
    /// the limits come from `edge/demo/demo.toml` through the runtime's own config loader.
    pub fn demo(port: &Path) -> Self {
        let d = repo().join("edge/demo");
        let safety = grasp_edge::config::Config::load(&d.join("demo.toml")).unwrap().safety;
        Rig {
            model: repo().join("models/ggcnn-p-rgb-224.onnx"),
            calibration: d.join("calibration.toml"),
            frames: d.join("frames"),
            port: port.to_path_buf(),
            mode: "pick",
            workspace_min: safety.workspace_min,
            workspace_max: safety.workspace_max,
            max_opening_mm: safety.max_opening_mm,
            looping: false,
            record_dir: None,
        }
    }

    /// Writes the config as TOML.
    pub fn write(&self, path: &Path) {
        let record = self
            .record_dir
            .as_ref()
            .map(|d| format!("record_dir = {:?}\n", d.display().to_string()))
            .unwrap_or_default();
        let text = format!(
            r#"[model]
path = {model:?}
backend = "tract"
threads = 1
top_k = 5
[camera]
source = "replay"
dir = {frames:?}
fps = 0.0
looping = {looping}
[calibration]
path = {calib:?}
grasp_height_mm = 10.0
[arm]
dialect = "grasp-line"
port = {port:?}
reply_timeout_ms = 40
retries = 10
heartbeat_ms = 300
reconnect_min_ms = 50
reconnect_max_ms = 400
[control]
mode = "{mode}"
[control.stream]
rate_hz = 10.0
smoothing = 0.5
reacquire_mm = 30.0
lost_after_frames = 5
[control.pick]
stable_frames = 3
stable_mm = 6.0
approach_mm = 60.0
lift_mm = 80.0
opening_margin_mm = 10.0
[safety]
workspace_min = {wmin:?}
workspace_max = {wmax:?}
max_opening_mm = {maxo:?}
min_quality = 0.3
[output]
stats_interval_s = 1.0
{record}"#,
            model = self.model.display().to_string(),
            frames = self.frames.display().to_string(),
            looping = self.looping,
            calib = self.calibration.display().to_string(),
            port = self.port.display().to_string(),
            mode = self.mode,
            wmin = self.workspace_min,
            wmax = self.workspace_max,
            maxo = self.max_opening_mm,
        );
        std::fs::write(path, text).unwrap();
    }
}

/// A tiny random GG-CNN (32 px input, widths scaled to a few pixels) and matching 32x32 frames and
/// calibration, for long soaks: the pipeline's own costs dominate, not inference.
pub fn tiny_rig(dir: &Path, port: &Path) -> Rig {
    use grasp_models::arch::Architecture;
    use grasp_models::onnx::{export, ExportOptions};
    use grasp_models::{ArchKind, ModelInfo, NamedWeights};
    let arch = Architecture::ggcnn();
    let mut info = ModelInfo::new(ArchKind::GgCnn, None, 32);
    info.decode.width_scale = 4.0;
    info.decode.peak_threshold = 0.0;
    info.decode.peak_min_distance = 4;
    info.provenance = "grasp-hil tiny random model".into();
    let mut weights = NamedWeights::random(&arch, 7);
    // Random weights give Q around 0: lift it so that every frame has grasps to track.
    let bias = weights
        .0
        .iter_mut()
        .find(|(name, _)| name.contains("head_q") && name.ends_with("bias"))
        .expect("a Q head bias");
    bias.1.data.iter_mut().for_each(|b| *b += 0.6);
    let bytes = export(&arch, &weights, &info, &ExportOptions::default()).expect("export tiny model");
    let model = dir.join("tiny.onnx");
    std::fs::write(&model, bytes).unwrap();
    let frames = dir.join("tiny-frames");
    std::fs::create_dir_all(&frames).unwrap();
    for i in 0..4u8 {
        image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([(x * 8) as u8 ^ i, (y * 8) as u8, 40 * i]))
            .save(frames.join(format!("{i}.png")))
            .unwrap();
    }
    // 32 px camera 400 mm above (250, 0): fx 40 → 10 mm per pixel.
    let calibration = dir.join("tiny-calibration.toml");
    std::fs::write(
        &calibration,
        "version = 1\nunits = \"mm\"\n[image]\nwidth = 32\nheight = 32\n[intrinsics]\nfx = 40.0\nfy = 40.0\ncx = 16.0\ncy = 16.0\n[extrinsics]\nrotation = [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]\ntranslation = [250.0, 0.0, 400.0]\n[table]\nz = 0.0\n",
    )
    .unwrap();
    Rig {
        model,
        calibration,
        frames,
        port: port.to_path_buf(),
        mode: "stream",
        workspace_min: [50.0, -300.0, -10.0],
        workspace_max: [450.0, 300.0, 200.0],
        max_opening_mm: 200.0,
        looping: true,
        record_dir: None,
    }
}
