//! `grasp-edge check-config`: validates a configuration, its model and its calibration.

use anyhow::Result;
use grasp_edge::config::{CameraConfig, Config};
use std::path::PathBuf;

/// Validate a configuration file, its model and its calibration; exits non-zero naming the
/// bad field. Nothing is opened but files.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file.
    config: PathBuf,
}

/// Loads everything a `run` would load from files and prints a one-line summary.
pub fn run(args: Args) -> Result<()> {
    let config = args.config;
    let cfg = Config::load(&config)?;
    let (model, calib) = grasp_edge::app::load_model_and_calibration(&cfg)?;
    let view = grasp_edge::app::table_view(&cfg, &model.info, &calib)?;
    if let CameraConfig::V4l2 { width, height, .. } = &cfg.camera {
        anyhow::ensure!(
            (*width, *height) == (calib.image.width, calib.image.height),
            "config {}: field `camera.width/height`: {width}x{height} differs from the calibration's {}x{} ({})",
            config.display(),
            calib.image.width,
            calib.image.height,
            cfg.calibration.path.display()
        );
    }
    let seen = view.map_or("the camera image".to_string(), |v| format!("the table view at {:.3} mm/px", v.mm_per_px()));
    println!(
        "{}: ok (model {} input {}px on {seen}, calibration {}x{}, arm {:?} on {}, mode {:?})",
        config.display(),
        cfg.model.path.display(),
        model.info.input_size,
        calib.image.width,
        calib.image.height,
        cfg.arm.dialect,
        cfg.arm.port.display(),
        cfg.control.mode
    );
    Ok(())
}
