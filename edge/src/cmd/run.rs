//! `grasp-edge run`: the robot loop as configured (what the systemd service runs).

use super::{install_stop_handler, run_pipeline, FrameLimit, Overrides};
use anyhow::Result;
use grasp_edge::config::Config;
use grasp_edge::service::SdNotifier;
use std::path::PathBuf;

/// Run the robot loop as configured: camera → model → robot frame → safety filter → arm.
///
/// This is what the systemd service runs. It signals READY once camera, model and arm are
/// open, pings the watchdog from the loop, logs a stats line every few seconds, and on
/// SIGINT/SIGTERM sends STOP to the arm, closes the port and exits 0.
///
/// Example: grasp-edge run --config /etc/grasp-edge/grasp-edge.toml
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration (see edge/grasp-edge.example.toml for every key).
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    limit: FrameLimit,
    #[command(flatten)]
    overrides: Overrides,
    /// Override arm.port.
    #[arg(long)]
    port: Option<PathBuf>,
}

/// Loads the config, applies the overrides and runs until a signal.
pub fn run(args: Args) -> Result<()> {
    let mut cfg = Config::load(&args.config)?;
    args.overrides.apply(&mut cfg)?;
    if let Some(p) = args.port {
        cfg.arm.port = p;
    }
    let stop = install_stop_handler()?;
    let summary = run_pipeline(&cfg, Box::new(SdNotifier::from_env()), args.limit.frames, false, &stop)?;
    let latency = summary.latency_ms.map_or("-".into(), |(p50, p99)| format!("{p50:.0}/{p99:.0} ms"));
    log::info!(
        "stopped after {} frames ({} stale), {} commands, {} picks, {} reconnects; latency p50/p99 {latency}",
        summary.frames,
        summary.stale_frames,
        summary.command_count,
        summary.picks,
        summary.reconnects
    );
    Ok(())
}
