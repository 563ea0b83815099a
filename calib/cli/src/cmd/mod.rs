//! One module per subcommand of `grasp-calib`, each with its clap arguments and its `run`, and
//! the helpers they share: argument parsers, the file stamp, and saving a checked calibration.

pub mod check;
pub mod import_camera_info;
pub mod project;
pub mod solve;
pub mod wizard;

use anyhow::{Context, Result};
use grasp_calib::CalibrationFile;
use std::path::Path;

pub fn parse_xyz(s: &str) -> Result<[f64; 3], String> {
    let v: Vec<f64> =
        s.split(',').map(|p| p.trim().parse::<f64>().map_err(|e| format!("`{p}`: {e}"))).collect::<Result<_, _>>()?;
    match v.as_slice() {
        [x, y, z] if v.iter().all(|c| c.is_finite()) => Ok([*x, *y, *z]),
        _ => Err(format!("expected three numbers x,y,z, got `{s}`")),
    }
}

pub fn parse_grid(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s.split_once('x').ok_or_else(|| format!("expected NxM, got `{s}`"))?;
    let a: usize = a.parse().map_err(|e| format!("`{a}`: {e}"))?;
    let b: usize = b.parse().map_err(|e| format!("`{b}`: {e}"))?;
    if a == 0 || b == 0 {
        return Err("both counts must be positive".into());
    }
    Ok((a, b))
}

pub fn parse_colour(s: &str) -> Result<[u8; 3], String> {
    let s = s.trim_start_matches('#');
    if s.len() != 6 {
        return Err(format!("expected RRGGBB, got `{s}`"));
    }
    let b = |i: usize| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("`{s}`: {e}"));
    Ok([b(0)?, b(2)?, b(4)?])
}

/// Fits with a larger RMS reprojection error (px) are not saved by `wizard` and `solve`, and are
/// flagged by `check`, unless the operator insists.
pub const DEFAULT_MAX_RMS_PX: f64 = 1.5;

/// When a calibration was written. Seconds since the epoch are enough to order calibrations; no
/// date crate for one field.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("unix:{secs}")
}

/// Validates a calibration before writing it to `out`: an implausible one is never saved.
pub fn save_calibration(file: &CalibrationFile, out: &Path) -> Result<()> {
    file.validate().with_context(|| format!("{}: the calibration is implausible", out.display()))?;
    std::fs::write(out, file.to_toml()).with_context(|| format!("writing {}", out.display()))
}
