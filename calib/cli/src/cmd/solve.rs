//! `grasp-calib solve`: a calibration from pixel ↔ robot pairs in a CSV file.

use super::{now_utc, parse_grid, save_calibration, DEFAULT_MAX_RMS_PX};
use anyhow::{bail, Context, Result};
use grasp_calib::{solve_full, CalibrationFile};
use std::path::PathBuf;

/// Solve a calibration from pixel ↔ robot pairs in a CSV file with header `u,v,x,y,z`
/// (pixels; robot millimetres). Full mode (default): ≥ 6 points not all on one plane, solves
/// intrinsics too. Planar mode (with --intrinsics or --intrinsics-from): ≥ 4 points on the
/// table, intrinsics known (typed in, or from a file written by `import-camera-info`).
///
/// Example: grasp-calib solve pairs.csv --table-z 0 --image-size 640x480 --intrinsics 615,615,320,240 --out cal.toml
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The CSV file of pairs (header `u,v,x,y,z`).
    pairs: PathBuf,
    /// Known intrinsics typed in: fx,fy,cx,cy[,k1,k2,p1,p2,k3] (planar mode).
    #[arg(long, value_delimiter = ',', conflicts_with = "intrinsics_from")]
    intrinsics: Option<Vec<f64>>,
    /// Known intrinsics from a calibration file (planar mode).
    #[arg(long)]
    intrinsics_from: Option<PathBuf>,
    /// Table height in the robot frame, mm.
    #[arg(long)]
    table_z: f64,
    /// Image size the pixels refer to, as WxH.
    #[arg(long, value_parser = parse_grid)]
    image_size: (usize, usize),
    #[arg(long)]
    out: PathBuf,
    /// Free-text rig description stored in the file.
    #[arg(long, default_value = "")]
    rig: String,
    /// Fits with a larger RMS reprojection error are not saved (without --force).
    #[arg(long, default_value_t = DEFAULT_MAX_RMS_PX)]
    max_rms_px: f64,
    /// Save a fit whose RMS exceeds --max-rms-px anyway.
    #[arg(long)]
    force: bool,
}

/// Reads the pairs, solves, and saves a plausible calibration.
pub fn run(args: Args) -> Result<()> {
    let Args { pairs, intrinsics, intrinsics_from, table_z, image_size, out, rig, max_rms_px, force } = args;
    let known = match (intrinsics, intrinsics_from) {
        (Some(v), _) => {
            if !(v.len() == 4 || v.len() == 9) {
                bail!("--intrinsics takes fx,fy,cx,cy or fx,fy,cx,cy,k1,k2,p1,p2,k3, got {} values", v.len());
            }
            let names = ["fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3"];
            if let Some((name, x)) = names.iter().zip(&v).find(|(_, x)| !x.is_finite()) {
                bail!("--intrinsics: {name} = {x} is not a finite number");
            }
            if !(v[0] > 0.0 && v[1] > 0.0) {
                bail!("--intrinsics: the focal lengths fx = {} and fy = {} must be positive (pixels)", v[0], v[1]);
            }
            let mut k = grasp_calib::Intrinsics::pinhole(v[0], v[1], v[2], v[3]);
            if v.len() == 9 {
                (k.k1, k.k2, k.p1, k.p2, k.k3) = (v[4], v[5], v[6], v[7], v[8]);
            }
            Some(k)
        }
        (None, Some(f)) => Some(CalibrationFile::load(&f)?.intrinsics),
        (None, None) => None,
    };
    let text = std::fs::read_to_string(&pairs).with_context(|| format!("reading {}", pairs.display()))?;
    let points = grasp_calib_cli::parse_pairs(&text, &pairs.display().to_string())?;
    let s = match &known {
        Some(k) => grasp_calib::solve_planar(&points, k)
            .with_context(|| format!("solving (planar, known intrinsics) from {}", pairs.display()))?,
        None => solve_full(&points, table_z).with_context(|| format!("solving from {}", pairs.display()))?,
    };
    let fit = grasp_calib::file::FitQuality {
        rms_reprojection_px: s.rms_reprojection_px,
        rms_position_mm: s.rms_position_mm,
        points: s.points,
    };
    let mut file =
        CalibrationFile::from_model(&s.model, image_size.0 as u32, image_size.1 as u32, &rig, &now_utc(), Some(fit));
    if known.is_some() {
        // Planar mode: the points lie on the table, whose height they give.
        file.table.z = table_z;
    }
    if !(s.rms_reprojection_px <= max_rms_px) && !force {
        bail!(
            "calibration NOT saved: RMS reprojection {:.2} px exceeds --max-rms-px {max_rms_px} (check that each pixel belongs to its robot point; --force saves it anyway)",
            s.rms_reprojection_px
        );
    }
    save_calibration(&file, &out)?;
    println!(
        "{} points: RMS reprojection {:.3} px, RMS position (leave-one-out) {:.2} mm; saved {}",
        s.points,
        s.rms_reprojection_px,
        s.rms_position_mm,
        out.display()
    );
    Ok(())
}
