//! One module per subcommand of `grasp-edge`, each with its clap arguments and its `run`, and
//! the helpers they share (config overrides, the stop handler, running a pipeline).

pub mod check_config;
pub mod demo;
pub mod detect;
pub mod run;
pub mod sim_arm;

use anyhow::{Context, Result};
use grasp_edge::config::{Config, ControlMode};
use grasp_edge::runtime::Summary;
use grasp_edge::service::Notifier;
use grasp_models::BackendKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Command-line values that replace configuration values (`run` and `demo`).
#[derive(clap::Args, Debug, Default)]
pub struct Overrides {
    /// Override model.backend.
    #[arg(long)]
    pub backend: Option<BackendKind>,
    /// Override control.mode (stream | pick).
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<ControlMode>,
}

impl Overrides {
    /// Applies the values given on the command line.
    pub fn apply(&self, cfg: &mut Config) {
        if let Some(b) = self.backend {
            cfg.model.backend = b;
        }
        if let Some(m) = self.mode {
            cfg.control.mode = m;
        }
    }
}

fn parse_mode(s: &str) -> Result<ControlMode, String> {
    match s {
        "stream" => Ok(ControlMode::Stream),
        "pick" => Ok(ControlMode::Pick),
        other => Err(format!("unknown mode `{other}` (expected stream or pick)")),
    }
}

/// SIGINT/SIGTERM set the returned flag; the loop then sends STOP and returns. A second signal
/// while stopping exits at once.
pub fn install_stop_handler() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || {
        if s.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        log::info!("signal received: stopping (STOP to the arm, then exit)");
    })
    .context("installing the SIGINT/SIGTERM handler")?;
    Ok(stop)
}

/// Builds the pipeline of `cfg` and runs it until `stop`, the replay's end or `frames` frames.
pub fn run_pipeline(
    cfg: &Config,
    notifier: Box<dyn Notifier>,
    frames: Option<u64>,
    print_commands: bool,
    stop: &AtomicBool,
) -> Result<Summary> {
    let mut pipeline = grasp_edge::app::build_pipeline(cfg, notifier)?;
    if print_commands {
        pipeline.on_command = Some(Box::new(|c| println!("arm <- {}", serde_json::to_string(c).unwrap_or_default())));
    }
    let summary = pipeline.run(stop, frames)?;
    log::info!("stats: {}", summary.stats_line);
    Ok(summary)
}

/// `--frames N`: stop after N frames.
#[derive(clap::Args, Debug, Default)]
pub struct FrameLimit {
    /// Stop after this many frames (default: run until a signal or the replay ends).
    #[arg(long)]
    pub frames: Option<u64>,
}
