//! `grasp-calib project`: pixel → robot point through a calibration.

use anyhow::{Context, Result};
use grasp_calib::CalibrationFile;
use std::path::PathBuf;

/// Pixel → robot: prints {"x":…,"y":…,"z":…} in mm, where the pixel's ray meets the table
/// (or the plane z = --z).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The calibration file.
    file: PathBuf,
    /// Pixel column.
    u: f64,
    /// Pixel row.
    v: f64,
    /// Height of the plane to meet, mm (default: the table).
    #[arg(long)]
    z: Option<f64>,
}

/// Prints the robot point as JSON.
pub fn run(args: Args) -> Result<()> {
    let Args { file, u, v, z } = args;
    let f = CalibrationFile::load(&file)?;
    let p =
        f.model().pixel_to_robot(u, v, z).with_context(|| format!("projecting ({u}, {v}) with {}", file.display()))?;
    println!("{}", serde_json::json!({"x": p.x, "y": p.y, "z": p.z}));
    Ok(())
}
