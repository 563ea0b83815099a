//! `grasp-edge`: the robot-side binary.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use grasp_edge::config::{Config, ControlMode};
use grasp_edge::service::{NoNotifier, Notifier, SdNotifier};
use grasp_models::detector::GraspDetector;
use grasp_models::{load_backend, BackendKind, BackendOptions, GraspModelFile};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "grasp-edge", version, about = "Pick objects seen by one colour camera: grasp model -> robot frame -> arm")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Detect grasps in image files and print them (best first, in each image's pixel coordinates:
    /// x right, y down, angle in radians counter-clockwise on screen, width = opening in pixels).
    ///
    /// Each image is centre-cropped to a square and resized to the model's input, as the model's
    /// metadata (`grasp.image_fit`) says; results are mapped back to the original image.
    ///
    /// Example: grasp-edge detect --model models/ggcnn-rgb.onnx --json frame.png
    Detect {
        /// The ONNX grasp model (see models/README.md for the contract).
        #[arg(long)]
        model: PathBuf,
        /// Inference backend: `auto` (torch on CUDA if compiled in and a GPU is present, else tract),
        /// `tract` (CPU), `torch` (libtorch, needs a build with `--features torch`).
        #[arg(long, default_value = "auto")]
        backend: BackendKind,
        /// Number of grasps to report per image.
        #[arg(long, default_value_t = 1)]
        top_k: usize,
        /// CPU threads for inference (default: the backend's choice).
        #[arg(long)]
        threads: Option<usize>,
        /// One JSON object per image and line instead of text.
        #[arg(long)]
        json: bool,
        /// Image files (PNG or JPEG).
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Run the robot loop as configured: camera → model → robot frame → safety filter → arm.
    ///
    /// This is what the systemd service runs. It signals READY once camera, model and arm are
    /// open, pings the watchdog from the loop, logs a stats line every few seconds, and on
    /// SIGINT/SIGTERM sends STOP to the arm, closes the port and exits 0.
    ///
    /// Example: grasp-edge run --config /etc/grasp-edge/grasp-edge.toml
    Run {
        /// The configuration (see edge/grasp-edge.example.toml for every key).
        #[arg(long)]
        config: PathBuf,
        /// Stop after this many frames (default: run until a signal or the replay ends).
        #[arg(long)]
        frames: Option<u64>,
        /// Override model.backend.
        #[arg(long)]
        backend: Option<BackendKind>,
        /// Override arm.port.
        #[arg(long)]
        port: Option<PathBuf>,
        /// Override control.mode (stream | pick).
        #[arg(long, value_parser = parse_mode)]
        mode: Option<ControlMode>,
    },
    /// Validate a configuration file, its model and its calibration; exits non-zero naming the
    /// bad field. Nothing is opened but files.
    CheckConfig {
        config: PathBuf,
    },
    /// The whole job on embedded defaults: the shipped model on the bundled sample frames, the
    /// bundled calibration, and a simulated arm on a pseudo-terminal. Prints every command sent
    /// to the arm and the stats, and writes annotated frames.
    ///
    /// Example: grasp-edge demo --frames 32
    Demo {
        /// Stop after this many frames (default: run until Ctrl-C).
        #[arg(long)]
        frames: Option<u64>,
        /// Where annotated frames go.
        #[arg(long, default_value = "grasp-edge-demo")]
        out: PathBuf,
        /// Override model.backend.
        #[arg(long)]
        backend: Option<BackendKind>,
        /// stream or pick (default: the demo config's, pick).
        #[arg(long, value_parser = parse_mode)]
        mode: Option<ControlMode>,
    },
    /// Serve the simulated grasp-line controller on a pseudo-terminal until Ctrl-C, for manual
    /// tests with a terminal program or a firmware port: the terminal's path is published as a
    /// symlink at LINK.
    SimArm {
        /// Symlink to create (e.g. /tmp/grasp-arm).
        link: PathBuf,
        /// Probability of dropping / garbling each line (both directions), for fault drills.
        #[arg(long, default_value_t = 0.0)]
        faults: f64,
    },
}

fn parse_mode(s: &str) -> Result<ControlMode, String> {
    match s {
        "stream" => Ok(ControlMode::Stream),
        "pick" => Ok(ControlMode::Pick),
        other => Err(format!("unknown mode `{other}` (expected stream or pick)")),
    }
}

/// Where the demo's files are: $GRASP_EDGE_DEMO, an installed share directory, or the source tree.
fn demo_dir() -> Result<PathBuf> {
    let mut candidates = vec![];
    if let Ok(d) = std::env::var("GRASP_EDGE_DEMO") {
        candidates.push(PathBuf::from(d));
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(bin) = exe.parent() {
            candidates.push(bin.join("../share/grasp-edge/demo"));
        }
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("demo"));
    candidates
        .iter()
        .find(|d| d.join("demo.toml").is_file())
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("demo files not found (looked in {}); set GRASP_EDGE_DEMO to the edge/demo directory", candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", ")))
}

fn install_stop_handler() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || {
        if s.swap(true, Ordering::SeqCst) {
            // A second signal while stopping: leave now.
            std::process::exit(130);
        }
        log::info!("signal received: stopping (STOP to the arm, then exit)");
    })
    .context("installing the SIGINT/SIGTERM handler")?;
    Ok(stop)
}

fn run_pipeline(cfg: &Config, notifier: Box<dyn Notifier>, frames: Option<u64>, print_commands: bool, stop: &AtomicBool) -> Result<grasp_edge::runtime::Summary> {
    let mut pipeline = grasp_edge::app::build_pipeline(cfg, notifier)?;
    if print_commands {
        pipeline.on_command = Some(Box::new(|c| println!("arm <- {}", serde_json::to_string(c).unwrap_or_default())));
    }
    let summary = pipeline.run(stop, frames)?;
    log::info!("stats: {}", summary.stats_line);
    Ok(summary)
}

#[derive(serde::Serialize)]
struct JsonGrasp {
    x: f32,
    y: f32,
    angle: f32,
    width: f32,
    quality: f32,
}

#[derive(serde::Serialize)]
struct JsonTimes {
    pre: f64,
    infer: f64,
    post: f64,
}

#[derive(serde::Serialize)]
struct JsonDetection<'a> {
    image: &'a str,
    backend: &'a str,
    grasps: Vec<JsonGrasp>,
    ms: JsonTimes,
}

fn main() -> Result<()> {
    // Under systemd, journald adds its own timestamps.
    let mut logger = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        logger.format_timestamp(None);
    }
    logger.init();
    match Cli::parse().command {
        Command::Run { config, frames, backend, port, mode } => {
            let mut cfg = Config::load(&config)?;
            if let Some(b) = backend {
                cfg.model.backend = b;
            }
            if let Some(p) = port {
                cfg.arm.port = p;
            }
            if let Some(m) = mode {
                cfg.control.mode = m;
            }
            let stop = install_stop_handler()?;
            let summary = run_pipeline(&cfg, Box::new(SdNotifier::from_env()), frames, false, &stop)?;
            log::info!("stopped after {} frames, {} commands, {} picks, {} reconnects", summary.frames, summary.command_count, summary.picks, summary.reconnects);
        }
        Command::CheckConfig { config } => {
            let cfg = Config::load(&config)?;
            let (model, calib) = grasp_edge::app::load_model_and_calibration(&cfg)?;
            if let grasp_edge::config::CameraConfig::V4l2 { width, height, .. } = &cfg.camera {
                anyhow::ensure!(
                    (*width, *height) == (calib.image.width, calib.image.height),
                    "config {}: field `camera.width/height`: {width}x{height} differs from the calibration's {}x{} ({})",
                    config.display(),
                    calib.image.width,
                    calib.image.height,
                    cfg.calibration.path.display()
                );
            }
            println!("{}: ok (model {} input {}px, calibration {}x{}, arm {:?} on {}, mode {:?})", config.display(), cfg.model.path.display(), model.info.input_size, calib.image.width, calib.image.height, cfg.arm.dialect, cfg.arm.port.display(), cfg.control.mode);
        }
        Command::Demo { frames, out, backend, mode } => {
            let dir = demo_dir()?;
            let mut cfg = Config::load(&dir.join("demo.toml"))?;
            if let Some(b) = backend {
                cfg.model.backend = b;
            }
            if let Some(m) = mode {
                cfg.control.mode = m;
            }
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            cfg.output.annotate_dir = Some(out.clone());
            let sim_link = out.join("sim-arm");
            let sim_state = Arc::new(std::sync::Mutex::new(grasp_edge::sim::SimController::new(std::time::Instant::now())));
            let mut sim = grasp_edge::sim::serve_pty(&sim_link, sim_state.clone(), Default::default()).context("starting the simulated arm")?;
            cfg.arm.port = sim_link.clone();
            println!("demo: model {}, frames {}, simulated arm on {} -> {}", cfg.model.path.display(), dir.join("frames").display(), sim_link.display(), std::fs::read_link(&sim_link).map(|p| p.display().to_string()).unwrap_or_default());
            let stop = install_stop_handler()?;
            let summary = run_pipeline(&cfg, Box::new(NoNotifier), frames, true, &stop)?;
            sim.shutdown();
            let executed = sim_state.lock().unwrap().motions().len();
            println!("demo: {} frames, {} commands sent ({} motions executed by the simulated arm), {} picks; annotated frames in {}", summary.frames, summary.command_count, executed, summary.picks, out.display());
            println!("stats: {}", summary.stats_line);
        }
        Command::SimArm { link, faults } => {
            let f = grasp_edge::sim::Faults { drop_in: faults, drop_out: faults, garble_in: faults, garble_out: faults, ..Default::default() };
            let state = Arc::new(std::sync::Mutex::new(grasp_edge::sim::SimController::new(std::time::Instant::now())));
            let mut server = grasp_edge::sim::serve_pty(&link, state.clone(), f)?;
            println!("simulated grasp-line arm on {} -> {} (Ctrl-C to stop)", link.display(), std::fs::read_link(&link)?.display());
            let stop = install_stop_handler()?;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            server.shutdown();
            println!("executed {} commands", state.lock().unwrap().executed.len());
        }
        Command::Detect { model, backend, top_k, threads, json, images } => {
            let file = GraspModelFile::read(&model)?;
            let backend = load_backend(backend, &file, &BackendOptions { threads })
                .with_context(|| format!("loading {} with backend {backend}", model.display()))?;
            let mut detector = GraspDetector::new(backend, None);
            let backend_name = detector.backend_name();
            for path in &images {
                let img = image::open(path).with_context(|| format!("cannot read image {}", path.display()))?.to_rgb8();
                let (w, h) = (img.width() as usize, img.height() as usize);
                let (grasps, ms) = detector.detect(img.as_raw(), w, h, top_k).with_context(|| format!("detecting grasps in {}", path.display()))?;
                if json {
                    let line = JsonDetection {
                        image: &path.display().to_string(),
                        backend: &backend_name,
                        grasps: grasps.iter().map(|g| JsonGrasp { x: g.x, y: g.y, angle: g.angle, width: g.width, quality: g.quality }).collect(),
                        ms: JsonTimes { pre: ms.pre, infer: ms.infer, post: ms.post },
                    };
                    println!("{}", serde_json::to_string(&line)?);
                } else {
                    println!("{} ({backend_name}, pre {:.1} ms, infer {:.1} ms, post {:.1} ms):", path.display(), ms.pre, ms.infer, ms.post);
                    if grasps.is_empty() {
                        println!("  no grasp above the quality threshold");
                    }
                    for g in grasps {
                        println!("  x {:.1} y {:.1} angle {:.1}° width {:.1} px quality {:.3}", g.x, g.y, g.angle.to_degrees(), g.width, g.quality);
                    }
                }
            }
        }
    }
    Ok(())
}
