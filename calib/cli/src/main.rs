//! `grasp-calib`: calibrate the camera against the arm, and inspect calibration files.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use grasp_calib::marker::MarkerSpec;
use grasp_calib::{solve_full, CalibrationFile, Correspondence};
use grasp_calib_cli::{run_wizard, verification_image, Operator, WizardMode, WizardSettings};
use nalgebra::Point3;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "grasp-calib", version, about = "Calibrate the camera against the arm (image → robot transform) and inspect calibration files")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// The wizard moves the arm over a grid inside the safe box.
    Auto,
    /// You jog the arm; the wizard reads its position at each Enter.
    Manual,
}

#[derive(Subcommand)]
enum Command {
    /// Guided calibration: checks camera and arm, collects marker positions at poses on two or
    /// more heights, solves the camera (DLT + Levenberg–Marquardt), shows the residuals, writes a
    /// verification image, and saves the calibration file only when the fit is good (or you insist).
    ///
    /// Fix a saturated magenta disc (default colour, ~25 mm across) on the gripper, facing the
    /// camera, and measure its centre's offset from the tool point.
    ///
    /// Example: grasp-calib wizard --config /etc/grasp-edge/grasp-edge.toml --box-min 150,-100,20 --box-max 350,100,20 --heights 20,120 --marker-offset 0,0,30 --out /etc/grasp-edge/calibration.toml
    Wizard {
        /// The grasp-edge config whose [camera] and [arm] to use.
        #[arg(long, required_unless_present = "simulate")]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "auto")]
        mode: Mode,
        /// Safe box corner (x,y,z mm, robot frame) the auto mode may move in; z is ignored (see --heights).
        #[arg(long, value_parser = parse_xyz, default_value = "150,-100,0")]
        box_min: [f64; 3],
        #[arg(long, value_parser = parse_xyz, default_value = "350,100,0")]
        box_max: [f64; 3],
        /// Grid points per height, as NXxNY.
        #[arg(long, value_parser = parse_grid, default_value = "4x3")]
        grid: (usize, usize),
        /// Tool heights of the grid layers, mm (at least two).
        #[arg(long, value_delimiter = ',', default_value = "30,120")]
        heights: Vec<f64>,
        /// Marker centre relative to the tool point in the tool frame, mm.
        #[arg(long, value_parser = parse_xyz, default_value = "0,0,0")]
        marker_offset: [f64; 3],
        /// Marker colour as RRGGBB.
        #[arg(long, value_parser = parse_colour, default_value = "FF00FF")]
        marker_colour: [u8; 3],
        /// Height of the table surface in the robot frame, mm.
        #[arg(long, default_value_t = 0.0)]
        table_z: f64,
        /// Fits with a larger RMS reprojection error are saved only if you confirm.
        #[arg(long, default_value_t = 1.5)]
        max_rms_px: f64,
        /// Manual mode: points to collect.
        #[arg(long, default_value_t = 12)]
        points: usize,
        /// Answer yes to every question (unattended runs; a poor fit is then saved too).
        #[arg(long)]
        yes: bool,
        /// Free-text rig description stored in the file.
        #[arg(long, default_value = "")]
        rig: String,
        /// Where to write the calibration.
        #[arg(long)]
        out: PathBuf,
        /// Where to write the verification image (default: next to --out, .png).
        #[arg(long)]
        image: Option<PathBuf>,
        /// No hardware: a simulated arm and a synthetic camera (a known rig) — for trying the wizard.
        #[arg(long)]
        simulate: bool,
    },
    /// Solve a calibration from pixel ↔ robot pairs in a CSV file with header `u,v,x,y,z`
    /// (pixels; robot millimetres). Full mode (default): ≥ 6 points not all on one plane, solves
    /// intrinsics too. Planar mode (with --intrinsics or --intrinsics-from): ≥ 4 points on the
    /// table, intrinsics known (typed in, or from a file written by `import-camera-info`).
    ///
    /// Example: grasp-calib solve pairs.csv --table-z 0 --image-size 640x480 --intrinsics 615,615,320,240 --out cal.toml
    Solve {
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
        #[arg(long, default_value = "")]
        rig: String,
    },
    /// Validate a calibration file and print what it says.
    Check { file: PathBuf },
    /// Pixel → robot: prints {"x":…,"y":…,"z":…} in mm, where the pixel's ray meets the table
    /// (or the plane z = --z).
    Project {
        file: PathBuf,
        u: f64,
        v: f64,
        #[arg(long)]
        z: Option<f64>,
    },
    /// Write intrinsics from a ROS camera_info YAML into a calibration file (creating it with an
    /// identity pose above the table if it does not exist; run the wizard or `solve` for the pose).
    ImportCameraInfo {
        yaml: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

fn parse_xyz(s: &str) -> Result<[f64; 3], String> {
    let v: Vec<f64> = s.split(',').map(|p| p.trim().parse::<f64>().map_err(|e| format!("`{p}`: {e}"))).collect::<Result<_, _>>()?;
    match v.as_slice() {
        [x, y, z] if v.iter().all(|c| c.is_finite()) => Ok([*x, *y, *z]),
        _ => Err(format!("expected three numbers x,y,z, got `{s}`")),
    }
}

fn parse_grid(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s.split_once('x').ok_or_else(|| format!("expected NxM, got `{s}`"))?;
    let a: usize = a.parse().map_err(|e| format!("`{a}`: {e}"))?;
    let b: usize = b.parse().map_err(|e| format!("`{b}`: {e}"))?;
    if a == 0 || b == 0 {
        return Err("both counts must be positive".into());
    }
    Ok((a, b))
}

fn parse_colour(s: &str) -> Result<[u8; 3], String> {
    let s = s.trim_start_matches('#');
    if s.len() != 6 {
        return Err(format!("expected RRGGBB, got `{s}`"));
    }
    let b = |i: usize| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("`{s}`: {e}"));
    Ok([b(0)?, b(2)?, b(4)?])
}

struct Terminal {
    yes: bool,
}

impl Operator for Terminal {
    fn say(&mut self, text: &str) {
        println!("{text}");
    }
    fn confirm(&mut self, question: &str) -> bool {
        if self.yes {
            println!("{question} yes (--yes)");
            return true;
        }
        print!("{question} [y/N] ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "Y" | "yes")
    }
    fn jogged(&mut self, point: usize, of: usize) -> bool {
        print!("point {point}/{of}: jog the arm, then Enter (or `d` + Enter when done) ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => false,
            Ok(_) => line.trim() != "d",
        }
    }
}

fn now_utc() -> String {
    // Seconds since the epoch are enough to order calibrations; no date crate for one field.
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("unix:{secs}")
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match Cli::parse().command {
        Command::Wizard { config, mode, box_min, box_max, grid, heights, marker_offset, marker_colour, table_z, max_rms_px, points, yes, rig, out, image, simulate } => {
            let settings = WizardSettings {
                mode: match mode {
                    Mode::Auto => WizardMode::Auto,
                    Mode::Manual => WizardMode::Manual,
                },
                box_min,
                box_max,
                grid,
                heights,
                marker_offset,
                marker: MarkerSpec { colour: marker_colour, ..MarkerSpec::default() },
                table_z,
                max_rms_px,
                manual_points: points,
                motion_timeout: Duration::from_secs(30),
                settle_frames: 2,
            };
            let mut op = Terminal { yes };
            let (result, width, height) = if simulate {
                let truth = grasp_calib_cli::synthetic::demo_truth();
                let state = std::sync::Arc::new(std::sync::Mutex::new(grasp_edge::sim::SimController::new(std::time::Instant::now())));
                let mut camera = grasp_calib_cli::synthetic::MarkerCamera::new(truth, 640, 480, state.clone(), marker_offset, marker_colour, 1);
                // The simulated controller on a real pseudo-terminal, driven by the real driver.
                let dir = std::env::temp_dir().join(format!("grasp-calib-sim-{}", std::process::id()));
                std::fs::create_dir_all(&dir)?;
                let link = dir.join("arm");
                let _server = grasp_edge::sim::serve_pty(&link, state, Default::default())?;
                let port = grasp_edge::link::SerialLink::open(link.to_str().unwrap_or_default(), 115_200, Duration::from_millis(500))?;
                let mut arm = grasp_edge::arm::LineArm::new(Box::new(port), Default::default(), 1);
                println!("simulated rig: arm on {}, synthetic camera (known intrinsics and pose)", link.display());
                let r = run_wizard(&settings, &mut camera, &mut arm, &mut op)?;
                (r, 640, 480)
            } else {
                let path = config.expect("clap requires --config without --simulate");
                let cfg = grasp_edge::config::Config::load(&path)?;
                let mut camera = grasp_edge::app::open_camera(&cfg).with_context(|| format!("opening the camera of {}", path.display()))?;
                let mut arm = grasp_edge::app::open_arm(&cfg);
                let t0 = std::time::Instant::now();
                while !arm.is_connected() {
                    arm.poll(std::time::Instant::now());
                    if t0.elapsed() > Duration::from_secs(10) {
                        bail!("cannot connect to the arm on {} (see the warnings above)", cfg.arm.port.display());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let r = run_wizard(&settings, camera.as_mut(), &mut arm, &mut op)?;
                let (w, h) = (r.last_frame.width, r.last_frame.height);
                (r, w, h)
            };
            let s = &result.solution;
            let image_path = image.unwrap_or_else(|| out.with_extension("png"));
            verification_image(&result.last_frame, &s.model, &result.samples, box_min, box_max, table_z).save(&image_path).with_context(|| format!("writing {}", image_path.display()))?;
            println!("verification image: {} (red: detected marker, green: solved projection, blue: table grid)", image_path.display());
            if !result.save {
                bail!("calibration NOT saved: RMS reprojection {:.2} px exceeds {:.2} px; check the marker detections in {} and rerun", s.rms_reprojection_px, max_rms_px, image_path.display());
            }
            let fit = grasp_calib::file::FitQuality { rms_reprojection_px: s.rms_reprojection_px, rms_position_mm: s.rms_position_mm, points: s.points };
            let file = CalibrationFile::from_model(&s.model, width as u32, height as u32, &rig, &now_utc(), Some(fit));
            file.validate().map_err(|(field, m)| anyhow::anyhow!("the solved calibration is implausible: `{field}`: {m}"))?;
            std::fs::write(&out, file.to_toml()).with_context(|| format!("writing {}", out.display()))?;
            println!("saved {}{}", out.display(), if result.good { "" } else { " (poor fit, saved on request)" });
        }
        Command::Solve { pairs, intrinsics, intrinsics_from, table_z, image_size, out, rig } => {
            let known = match (intrinsics, intrinsics_from) {
                (Some(v), _) => {
                    if !(v.len() == 4 || v.len() == 9) || v.iter().any(|x| !x.is_finite()) {
                        bail!("--intrinsics takes fx,fy,cx,cy or fx,fy,cx,cy,k1,k2,p1,p2,k3 (finite numbers), got {} values", v.len());
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
            let mut reader = csv::Reader::from_path(&pairs).with_context(|| format!("reading {}", pairs.display()))?;
            let headers = reader.headers()?.clone();
            if headers.iter().collect::<Vec<_>>() != ["u", "v", "x", "y", "z"] {
                bail!("{}: header must be `u,v,x,y,z`, is `{}`", pairs.display(), headers.iter().collect::<Vec<_>>().join(","));
            }
            let mut points = Vec::new();
            for (i, rec) in reader.deserialize::<[f64; 5]>().enumerate() {
                let [u, v, x, y, z] = rec.with_context(|| format!("{} line {}", pairs.display(), i + 2))?;
                points.push(Correspondence { u, v, robot: Point3::new(x, y, z) });
            }
            let s = match &known {
                Some(k) => grasp_calib::solve_planar(&points, k).with_context(|| format!("solving (planar, known intrinsics) from {}", pairs.display()))?,
                None => solve_full(&points, table_z).with_context(|| format!("solving from {}", pairs.display()))?,
            };
            let fit = grasp_calib::file::FitQuality { rms_reprojection_px: s.rms_reprojection_px, rms_position_mm: s.rms_position_mm, points: s.points };
            let mut file = CalibrationFile::from_model(&s.model, image_size.0 as u32, image_size.1 as u32, &rig, &now_utc(), Some(fit));
            if known.is_some() {
                // Planar mode: the points lie on the table, whose height they give.
                file.table.z = table_z;
            }
            file.validate().map_err(|(field, m)| anyhow::anyhow!("the solved calibration is implausible: `{field}`: {m}"))?;
            std::fs::write(&out, file.to_toml()).with_context(|| format!("writing {}", out.display()))?;
            println!("{} points: RMS reprojection {:.3} px, RMS position (leave-one-out) {:.2} mm; saved {}", s.points, s.rms_reprojection_px, s.rms_position_mm, out.display());
        }
        Command::Check { file } => {
            let f = CalibrationFile::load(&file)?;
            let m = f.model();
            let k = &f.intrinsics;
            println!("{}: ok", file.display());
            println!("  rig: {}  date: {}", f.rig, f.date);
            println!("  image {}x{}, fx {:.1} fy {:.1} cx {:.1} cy {:.1}, distortion k1 {:.4} k2 {:.4} p1 {:.5} p2 {:.5} k3 {:.4}", f.image.width, f.image.height, k.fx, k.fy, k.cx, k.cy, k.k1, k.k2, k.p1, k.p2, k.k3);
            let t = m.pose.translation;
            println!("  camera at ({:.1}, {:.1}, {:.1}) mm, {:.1} mm above the table (z = {:.1})", t.x, t.y, t.z, t.z - f.table.z, f.table.z);
            match &f.fit {
                Some(q) => println!("  fit: {} points, RMS reprojection {:.2} px, RMS position {:.2} mm", q.points, q.rms_reprojection_px, q.rms_position_mm),
                None => println!("  fit: not recorded"),
            }
            let c = m.pixel_to_robot(k.cx, k.cy, None)?;
            println!("  image centre → table point ({:.1}, {:.1}, {:.1}) mm", c.x, c.y, c.z);
        }
        Command::Project { file, u, v, z } => {
            let f = CalibrationFile::load(&file)?;
            let p = f.model().pixel_to_robot(u, v, z).with_context(|| format!("projecting ({u}, {v}) with {}", file.display()))?;
            println!("{}", serde_json::json!({"x": p.x, "y": p.y, "z": p.z}));
        }
        Command::ImportCameraInfo { yaml, out } => {
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
            file.validate().map_err(|(field, m)| anyhow::anyhow!("{}: `{field}`: {m}", out.display()))?;
            std::fs::write(&out, file.to_toml()).with_context(|| format!("writing {}", out.display()))?;
            println!("intrinsics of {} ({}x{}) written to {}", imported.camera_name, imported.width, imported.height, out.display());
        }
    }
    Ok(())
}
