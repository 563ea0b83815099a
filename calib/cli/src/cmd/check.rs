//! `grasp-calib check`: validates a calibration file and prints what it says.

use super::DEFAULT_MAX_RMS_PX;
use anyhow::{bail, Result};
use grasp_calib::CalibrationFile;
use std::path::PathBuf;

/// Pixels between the samples of the lens-coverage check.
const COVERAGE_STEP_PX: usize = 4;

/// Validate a calibration file and print what it says.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The calibration file.
    file: PathBuf,
    /// A recorded fit with a larger RMS reprojection error fails the check.
    #[arg(long, default_value_t = DEFAULT_MAX_RMS_PX)]
    max_rms_px: f64,
}

/// Loads (which validates) and prints the camera, its pose and the fit; fails on a poor recorded
/// fit or a lens model that folds back inside the image.
pub fn run(args: Args) -> Result<()> {
    let file = &args.file;
    let f = CalibrationFile::load(file)?;
    let m = f.model();
    let k = &f.intrinsics;
    println!("{}:", file.display());
    println!("  rig: {}  date: {}", f.rig, f.date);
    println!(
        "  image {}x{}, fx {:.1} fy {:.1} cx {:.1} cy {:.1}, distortion k1 {:.4} k2 {:.4} p1 {:.5} p2 {:.5} k3 {:.4}",
        f.image.width, f.image.height, k.fx, k.fy, k.cx, k.cy, k.k1, k.k2, k.p1, k.p2, k.k3
    );
    let t = m.pose.translation;
    println!(
        "  camera at ({:.1}, {:.1}, {:.1}) mm, {:.1} mm above the table (z = {:.1})",
        t.x,
        t.y,
        t.z,
        t.z - f.table.z,
        f.table.z
    );
    match &f.fit {
        Some(q) => println!(
            "  fit: {} points, RMS reprojection {:.2} px, RMS position {:.2} mm",
            q.points, q.rms_reprojection_px, q.rms_position_mm
        ),
        None => println!("  fit: not recorded"),
    }
    let coverage = m.intrinsics.coverage(f.image.width, f.image.height, COVERAGE_STEP_PX);
    println!(
        "  lens model: {} of {} sampled pixels map to a trusted ray",
        coverage.sampled - coverage.refused,
        coverage.sampled
    );
    let c = m.pixel_to_robot(k.cx, k.cy, None)?;
    println!("  image centre → table point ({:.1}, {:.1}, {:.1}) mm", c.x, c.y, c.z);
    if let Some(q) = f.fit.as_ref().filter(|q| !(q.rms_reprojection_px <= args.max_rms_px)) {
        bail!(
            "{}: the recorded fit's RMS reprojection {:.2} px exceeds {} px: recalibrate (the wizard shows which markers were off)",
            file.display(),
            q.rms_reprojection_px,
            args.max_rms_px
        );
    }
    if let Some((u, v)) = coverage.first_refused {
        bail!(
            "{}: the lens distortion folds back inside the image: {} of {} sampled pixels ({:.1} %, first at ({u}, {v})) have no trusted ray, and grasps seen there will be refused: recalibrate with markers out to the image's edges and corners",
            file.display(),
            coverage.refused,
            coverage.sampled,
            100.0 * coverage.refused as f64 / coverage.sampled as f64
        );
    }
    println!("{}: ok", file.display());
    Ok(())
}
