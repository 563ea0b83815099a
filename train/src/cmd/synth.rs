//! `grasp-train synth`.

use super::*;

/// Generate synthetic scenes in the Jacquard layout (RGB, perfect depth, mask, antipodal grasps),
/// seen straight from above (a 300 mm table square in --size pixels), or through a posed camera
/// (--camera-height-mm, --tilt-deg) with the camera's calibration.toml beside them. synth.toml
/// records the set's scale and camera.
///
/// Examples:
///   grasp-train synth --out /tmp/synth --count 200 --seed 1
///   grasp-train synth --out /tmp/clutter --count 2000 --randomised
///   grasp-train synth --out /tmp/clutter-rig --count 200 --randomised --camera-height-mm 450 --tilt-deg 20 --focal-px 600
///   grasp-train synth --out /tmp/rig600 --count 50 --camera-height-mm 600 --tilt-deg 30
#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 100)]
    count: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Image side in pixels of a top-down set (300 mm of table: 300 px is 1 mm per pixel).
    #[arg(long, default_value_t = 300)]
    size: usize,
    /// Render through a camera this high above the table (mm), looking at the scene's centre.
    #[arg(long)]
    camera_height_mm: Option<f64>,
    /// The posed camera's tilt from straight down, degrees.
    #[arg(long, default_value_t = 0.0, requires = "camera_height_mm")]
    tilt_deg: f64,
    /// The posed camera's focal length, pixels (450: a 70° field at 640 px).
    #[arg(long, default_value_t = 450.0, requires = "camera_height_mm")]
    focal_px: f64,
    /// The posed camera's image, WIDTHxHEIGHT.
    #[arg(long, default_value = "640x480", value_parser = parse_image_size, requires = "camera_height_mm")]
    image: (usize, usize),
    /// Training data for a table-view model: each scene seen by a random camera (300–950 mm
    /// high, tilted 0–35°) and warped into its --size² table view at this scale (mm per pixel).
    #[arg(long, conflicts_with = "camera_height_mm")]
    table_view_mm_per_px: Option<f64>,
    /// Domain-randomised top-down scenes: 1–5 objects per scene from nine families (box,
    /// cylinder, ellipsoid, ring, L, T, tool, thin strip, rack of thin bars), random object and table textures,
    /// low-contrast objects, noise, blur and JPEG artefacts; grasps checked against each
    /// object's neighbours. Top-down, or through the posed camera of --camera-height-mm.
    #[arg(long, conflicts_with = "table_view_mm_per_px")]
    randomised: bool,
}

fn parse_image_size(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("`{s}`: expected WIDTHxHEIGHT in pixels, e.g. 640x480");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    Ok((w.trim().parse().map_err(|_| bad())?, h.trim().parse().map_err(|_| bad())?))
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let Args { out, count, seed, size, camera_height_mm, tilt_deg, focal_px, image, table_view_mm_per_px, randomised } =
        args;
    let bar = indicatif::ProgressBar::new(count as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("synth [{bar:30}] {pos}/{len} scenes ETA {eta}")
            .expect("valid template"),
    );
    let started = std::time::Instant::now();
    let what = match (camera_height_mm, table_view_mm_per_px) {
        (None, Some(m)) => {
            Architecture::check_input_size(size)?;
            grasp_train::posed::write_table_view_dataset(&out, count, seed, size, m, |n| bar.set_position(n as u64))?;
            format!("{size}x{size} table views at {m} mm per pixel through random cameras")
        }
        (Some(height_mm), _) => {
            let camera =
                grasp_train::posed::SynthCamera { height_mm, tilt_deg, focal_px, width: image.0, height: image.1 };
            camera.check().map_err(anyhow::Error::msg)?;
            grasp_train::posed::write_posed_dataset(&out, count, seed, &camera, randomised, |n| {
                bar.set_position(n as u64)
            })?;
            format!(
                "{}{}x{} through a camera {height_mm} mm above the table, tilted {tilt_deg}°, focal {focal_px} px; calibration in {}",
                if randomised { "randomised, " } else { "" },
                image.0,
                image.1,
                out.join(grasp_train::posed::CALIBRATION_FILE).display()
            )
        }
        (None, None) if randomised => {
            Architecture::check_input_size(size)?;
            grasp_train::randomised::write_randomised_dataset(&out, count, seed, size, |n| bar.set_position(n as u64))?;
            format!("{size}x{size} top-down, randomised, {} mm per pixel", grasp_train::synth::SCENE_MM / size as f64)
        }
        (None, None) => {
            Architecture::check_input_size(size)?;
            grasp_train::synth::write_dataset(&out, count, seed, size, |n| bar.set_position(n as u64))?;
            format!("{size}x{size} top-down, {} mm per pixel", grasp_train::synth::SCENE_MM / size as f64)
        }
    };
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {count} scenes ({what}, seed {seed}) to {} (Jacquard layout) in {secs:.1} s ({:.0} scenes/s)",
        out.display(),
        count as f64 / secs.max(1e-9)
    );
    Ok(())
}
