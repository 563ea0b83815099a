//! `grasp-calib import-camera-info`: intrinsics from a ROS camera_info YAML.

use super::{now_utc, save_calibration};
use anyhow::Result;
use grasp_calib::CalibrationFile;
use std::path::PathBuf;

/// Write intrinsics from a ROS camera_info YAML into a calibration file (creating it with an
/// identity pose above the table if it does not exist; run the wizard or `solve` for the pose).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The camera_info YAML.
    yaml: PathBuf,
    /// The calibration file to write (updated if it exists).
    #[arg(long)]
    out: PathBuf,
}

/// Imports the intrinsics and image size.
pub fn run(args: Args) -> Result<()> {
    let Args { yaml, out } = args;
    let imported = grasp_calib::camera_info::load(&yaml)?;
    let mut file = if out.exists() {
        CalibrationFile::load(&out)?
    } else {
        // A placeholder pose: 1 m above the table looking down, until the wizard solves it.
        let mut m = grasp_calib_cli::synthetic::demo_truth();
        m.intrinsics = imported.intrinsics;
        CalibrationFile::from_model(&m, imported.width, imported.height, &imported.camera_name, &now_utc(), None)
    };
    file.intrinsics = imported.intrinsics;
    file.image = grasp_calib::file::ImageSize { width: imported.width, height: imported.height };
    save_calibration(&file, &out)?;
    println!(
        "intrinsics of {} ({}x{}) written to {}",
        imported.camera_name,
        imported.width,
        imported.height,
        out.display()
    );
    Ok(())
}
