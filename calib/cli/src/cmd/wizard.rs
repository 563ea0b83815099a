//! `grasp-calib wizard`: guided calibration against the arm.

use super::{now_utc, parse_colour, parse_grid, parse_xyz, save_calibration, DEFAULT_MAX_RMS_PX};
use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use grasp_calib::marker::MarkerSpec;
use grasp_calib::CalibrationFile;
use grasp_calib_cli::synthetic::{demo_truth, MarkerCamera};
use grasp_calib_cli::{run_wizard, verification_image, Operator, WizardMode, WizardResult, WizardSettings};
use grasp_devices::config::{open_arm, open_camera, DeviceConfig};
use grasp_devices::grasp_line::sim::{serve_pty, SimController};
use grasp_devices::grasp_line::{LineArm, LineTiming};
use grasp_devices::link::SerialLink;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// The wizard moves the arm over a grid inside the safe box.
    Auto,
    /// You jog the arm; the wizard reads its position at each Enter.
    Manual,
}

/// Guided calibration: checks camera and arm, collects marker positions at poses on two or
/// more heights, solves the camera (DLT + Levenberg–Marquardt), shows the residuals, writes a
/// verification image, and saves the calibration file only when the fit is good (or you insist).
///
/// Fix a saturated magenta disc (default colour, ~25 mm across) on the gripper, facing the
/// camera, and measure its centre's offset from the tool point.
///
/// Example: grasp-calib wizard --config /etc/grasp-edge/grasp-edge.toml --box-min 150,-100,20 --box-max 350,100,20 --heights 20,120 --marker-offset 0,0,30 --out /etc/grasp-edge/calibration.toml
#[derive(clap::Args, Debug)]
pub struct Args {
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
    #[arg(long, default_value_t = DEFAULT_MAX_RMS_PX)]
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

impl Args {
    fn settings(&self) -> WizardSettings {
        WizardSettings {
            mode: match self.mode {
                Mode::Auto => WizardMode::Auto,
                Mode::Manual => WizardMode::Manual,
            },
            box_min: self.box_min,
            box_max: self.box_max,
            grid: self.grid,
            heights: self.heights.clone(),
            marker_offset: self.marker_offset,
            marker: MarkerSpec { colour: self.marker_colour, ..MarkerSpec::default() },
            table_z: self.table_z,
            max_rms_px: self.max_rms_px,
            manual_points: self.points,
            motion_timeout: Duration::from_secs(30),
            settle_frames: 2,
        }
    }
}

/// How long the wizard waits for the configured arm to answer before giving up.
const ARM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The wizard on the simulated rig: the simulated controller on a real pseudo-terminal, driven
/// by the real driver, and a synthetic camera that draws the marker where the arm holds it.
fn run_simulated(settings: &WizardSettings, colour: [u8; 3], op: &mut Terminal) -> Result<WizardResult> {
    let state = Arc::new(Mutex::new(SimController::new(Instant::now())));
    let mut camera = MarkerCamera::new(demo_truth(), 640, 480, state.clone(), settings.marker_offset, colour, 1);
    let dir = std::env::temp_dir().join(format!("grasp-calib-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let link = dir.join("arm");
    let _server = serve_pty(&link, state, Default::default())?;
    let port = SerialLink::open(link.to_str().unwrap_or_default(), 115_200, Duration::from_millis(500))?;
    let mut arm = LineArm::new(Box::new(port), LineTiming::default(), 1);
    println!("simulated rig: arm on {}, synthetic camera (known intrinsics and pose)", link.display());
    Ok(run_wizard(settings, &mut camera, &mut arm, op)?)
}

/// The wizard on the camera and arm of a robot configuration (its other sections are ignored).
fn run_configured(settings: &WizardSettings, config: &Path, op: &mut Terminal) -> Result<WizardResult> {
    let cfg = DeviceConfig::load(config)?;
    let mut camera = open_camera(&cfg.camera).with_context(|| format!("opening the camera of {}", config.display()))?;
    let mut arm = open_arm(&cfg.arm);
    let t0 = Instant::now();
    while !arm.is_connected() {
        arm.poll(Instant::now());
        if t0.elapsed() > ARM_CONNECT_TIMEOUT {
            bail!("cannot connect to the arm on {} (see the warnings above)", cfg.arm.port.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(run_wizard(settings, camera.as_mut(), &mut arm, op)?)
}

/// Runs the wizard on the configured (or simulated) rig, writes the verification image and
/// saves a good fit (or a poor one the operator confirmed).
pub fn run(args: Args) -> Result<()> {
    let settings = args.settings();
    let mut op = Terminal { yes: args.yes };
    let result = match &args.config {
        _ if args.simulate => run_simulated(&settings, args.marker_colour, &mut op)?,
        Some(config) => run_configured(&settings, config, &mut op)?,
        None => bail!("--config is needed without --simulate"),
    };
    let s = &result.solution;
    let image_path = args.image.clone().unwrap_or_else(|| args.out.with_extension("png"));
    verification_image(&result.last_frame, &s.model, &result.samples, args.box_min, args.box_max, args.table_z)
        .save(&image_path)
        .with_context(|| format!("writing {}", image_path.display()))?;
    println!(
        "verification image: {} (red: detected marker, green: solved projection, blue: table grid)",
        image_path.display()
    );
    if !result.save {
        bail!("calibration NOT saved: RMS reprojection {:.2} px exceeds {:.2} px; check the marker detections in {} and rerun", s.rms_reprojection_px, args.max_rms_px, image_path.display());
    }
    let fit = grasp_calib::file::FitQuality {
        rms_reprojection_px: s.rms_reprojection_px,
        rms_position_mm: s.rms_position_mm,
        points: s.points,
    };
    let (w, h) = (result.last_frame.width as u32, result.last_frame.height as u32);
    let file = CalibrationFile::from_model(&s.model, w, h, &args.rig, &now_utc(), Some(fit));
    save_calibration(&file, &args.out)?;
    println!("saved {}{}", args.out.display(), if result.good { "" } else { " (poor fit, saved on request)" });
    Ok(())
}
