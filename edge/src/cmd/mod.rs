//! One module per subcommand of `grasp-edge`, each with its clap arguments and its `run`, and
//! the helpers they share (config overrides, the stop handler, running a pipeline).

pub mod check_config;
pub mod demo;
pub mod detect;
pub mod run;
pub mod sim_arm;

use anyhow::{bail, Context, Result};
use grasp_edge::config::{CameraConfig, Config, ControlMode, LoopMode};
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
    /// Override control.loop_mode: `live` (decide on the freshest frame, camera, inference and
    /// arm overlapped; the default for cameras) or `lockstep` (every frame in order, the same
    /// commands at any speed; the default for replays).
    #[arg(long = "loop", value_name = "MODE")]
    pub loop_mode: Option<LoopMode>,
    /// Play a replay camera at this many frames per second and, unless --loop says otherwise,
    /// live: how to exercise the live loop without a camera (e.g. --replay-fps 30).
    #[arg(long, value_name = "FPS")]
    pub replay_fps: Option<f64>,
    /// Tests only: pad every inference to at least this many ms.
    #[arg(long, hide = true, value_name = "MS")]
    pub pad_infer_ms: Option<u64>,
}

impl Overrides {
    /// Applies the values given on the command line.
    pub fn apply(&self, cfg: &mut Config) -> Result<()> {
        if let Some(b) = self.backend {
            cfg.model.backend = b;
        }
        if let Some(m) = self.mode {
            cfg.control.mode = m;
        }
        if let Some(rate) = self.replay_fps {
            let CameraConfig::Replay { fps, .. } = &mut cfg.camera else {
                bail!("--replay-fps needs a replay camera (camera.source = \"replay\"); this one is a V4L2 device");
            };
            if !(rate.is_finite() && rate > 0.0) {
                bail!("--replay-fps {rate}: must be a positive number of frames per second");
            }
            *fps = rate;
            cfg.control.loop_mode = Some(LoopMode::Live);
        }
        if let Some(l) = self.loop_mode {
            cfg.control.loop_mode = Some(l);
        }
        if let Some(ms) = self.pad_infer_ms {
            cfg.model.pad_infer_ms = ms;
        }
        Ok(())
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
        pipeline.control.on_command =
            Some(Box::new(|c| println!("arm <- {}", serde_json::to_string(c).unwrap_or_default())));
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
