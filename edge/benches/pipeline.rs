//! Full-pipeline benchmark: the demo configuration (shipped model, bundled frames, bundled
//! calibration) replayed as fast as possible in stream mode, the arm an in-memory recorder, with
//! each available CPU backend. Reports frames per second and per-stage p50 latency, and the share
//! of the frame time spent outside inference. Writes target/bench-pipeline.md.
//!
//! FRAMES=64 THREADS=2 cargo bench -p grasp-edge [--features torch] --bench pipeline
use grasp_devices::arm::{Arm, ArmOpener, Backoff, Reconnecting, RecordingArm};
use grasp_edge::config::{CameraConfig, Config, ControlMode};
use grasp_edge::service::Stage;
use grasp_models::BackendKind;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let frames: u64 = std::env::var("FRAMES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let threads: usize = std::env::var("THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let mut backends = vec![BackendKind::Tract];
    if cfg!(feature = "torch") {
        backends.push(BackendKind::Torch);
    }
    let mut report = format!("# Pipeline benchmark\n\n{frames} frames of the demo replay (480x480 → model 224²), stream mode, {threads} inference threads, in-memory arm.\n\n| backend | FPS | frame ms | {} | outside inference | latency p50/p99 ms |\n|---|---|---|{}---|---|\n", Stage::ALL.map(|s| format!("{} p50 ms", s.name())).join(" | "), "---|".repeat(Stage::ALL.len()));
    for backend in backends {
        let mut cfg = Config::load(&demo.join("demo.toml"))?;
        cfg.model.backend = backend;
        cfg.model.threads = threads;
        cfg.control.mode = ControlMode::Stream;
        cfg.camera = CameraConfig::Replay { dir: demo.join("frames"), fps: 0.0, looping: true };
        cfg.output.stats_interval_s = 3600.0;
        let mut p = grasp_edge::app::build_pipeline(&cfg, Box::new(grasp_edge::service::NoNotifier))?;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let opener: ArmOpener = Box::new(move || Ok(Box::new(RecordingArm::new(calls.clone())) as Box<dyn Arm>));
        p.parts.arm = Reconnecting::new(
            "memory",
            opener,
            Backoff { min: Duration::from_millis(1), max: Duration::from_millis(1) },
        );
        p.run(&AtomicBool::new(false), Some(4))?; // warm-up
        p.stats = Default::default();
        let t0 = Instant::now();
        let mut p2 = p;
        let before = 4;
        let summary = p2.run(&AtomicBool::new(false), Some(before + frames))?;
        let secs = t0.elapsed().as_secs_f64();
        let n = (summary.frames - before) as f64;
        let fps = n / secs;
        let p50: Vec<f64> = Stage::ALL.iter().map(|s| p2.stats.stage_percentiles(*s).0).collect();
        let frame_ms = 1e3 / fps;
        let outside = 1.0 - p2.stats.stage_percentiles(Stage::Infer).0 / frame_ms;
        let (l50, l99) = p2.stats.latency_percentiles();
        let row = format!(
            "| {backend} | {fps:.1} | {frame_ms:.1} | {} | {:.1} % | {l50:.1}/{l99:.1} |\n",
            p50.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(" | "),
            outside * 100.0
        );
        print!("{row}");
        report += &row;
    }
    report += "\n`outside inference` = 1 − infer p50 / mean frame time (capture = JPEG decode of the replayed file; pre = crop/resize/normalise; post = decode with smoothing; plan = robot frame + safety + tracker; arm = the in-memory arm). `latency` = a frame's first command written minus the frame's capture (here: its delivery by the replay, as fast as possible, so no waiting for a newer frame is included).\n";
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::create_dir_all(&target)?;
    std::fs::write(target.join("bench-pipeline.md"), &report)?;
    println!("\nwritten to target/bench-pipeline.md");
    Ok(())
}
