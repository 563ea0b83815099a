//! `grasp-edge demo`: the whole job on embedded defaults, with a simulated arm.

use super::{install_stop_handler, run_pipeline, FrameLimit, Overrides};
use anyhow::{Context, Result};
use grasp_devices::grasp_line::sim::{serve_pty, SimController};
use grasp_edge::config::Config;
use grasp_edge::service::NoNotifier;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The whole job on embedded defaults: the shipped model on the bundled sample frames, the
/// bundled calibration, and a simulated arm on a pseudo-terminal. Prints every command sent
/// to the arm and the stats, and writes annotated frames.
///
/// Example: grasp-edge demo --frames 32
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    limit: FrameLimit,
    /// Where annotated frames go.
    #[arg(long, default_value = "grasp-edge-demo")]
    out: PathBuf,
    #[command(flatten)]
    overrides: Overrides,
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
    candidates.iter().find(|d| d.join("demo.toml").is_file()).cloned().ok_or_else(|| {
        let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
        anyhow::anyhow!(
            "demo files not found (looked in {}); set GRASP_EDGE_DEMO to the edge/demo directory",
            looked.join(", ")
        )
    })
}

/// Starts the simulated arm, runs the demo config against it and prints a summary.
pub fn run(args: Args) -> Result<()> {
    let dir = demo_dir()?;
    let mut cfg = Config::load(&dir.join("demo.toml"))?;
    args.overrides.apply(&mut cfg)?;
    let out = args.out;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    cfg.output.annotate_dir = Some(out.clone());
    let sim_link = out.join("sim-arm");
    let sim_state = Arc::new(Mutex::new(SimController::new(Instant::now())));
    let mut sim = serve_pty(&sim_link, sim_state.clone(), Default::default()).context("starting the simulated arm")?;
    cfg.arm.port = sim_link.clone();
    let pty = std::fs::read_link(&sim_link).map(|p| p.display().to_string()).unwrap_or_default();
    println!(
        "demo: model {}, frames {}, simulated arm on {} -> {pty}",
        cfg.model.path.display(),
        dir.join("frames").display(),
        sim_link.display()
    );
    let stop = install_stop_handler()?;
    let summary = run_pipeline(&cfg, Box::new(NoNotifier), args.limit.frames, true, &stop)?;
    sim.shutdown();
    let executed = sim_state.lock().unwrap().motions().len();
    println!(
        "demo: {} frames, {} commands sent ({executed} motions executed by the simulated arm), {} picks; annotated frames in {}",
        summary.frames,
        summary.command_count,
        summary.picks,
        out.display()
    );
    println!("stats: {}", summary.stats_line);
    Ok(())
}
