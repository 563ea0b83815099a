//! The calibration wizard behind `grasp-calib`: moves (or asks the operator to jog) the arm over
//! poses, finds the gripper's marker in a camera frame at each, solves the camera from the
//! pixel ↔ robot pairs, draws a verification image and decides whether the fit is good enough to
//! save. Devices are the robot's own drivers from `grasp-devices`
//! ([`grasp_devices::camera::FrameSource`], [`grasp_devices::arm::Arm`]); [`synthetic`] is a camera
//! that renders the marker where a simulated arm holds it, for tests and `--simulate`;
//! [`parse_pairs`] reads the CSV of pixel ↔ robot pairs that `grasp-calib solve` takes.
#![warn(missing_docs)]

pub mod synthetic;

use grasp_calib::marker::{self, MarkerSpec};
use grasp_calib::{solve_full, CameraModel, Correspondence, Solution};
use grasp_devices::arm::{Arm, ArmError, ArmPose};
use grasp_devices::camera::{Frame, FrameError, FrameSource};
use nalgebra::Point3;
use std::time::Duration;

/// Why a CSV file of pixel ↔ robot pairs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PairsError {
    /// The header is not `u,v,x,y,z`.
    #[error("{name}: header must be `u,v,x,y,z`, is `{found}`")]
    Header {
        /// The file.
        name: String,
        /// The header found.
        found: String,
    },
    /// A row is not five numbers.
    #[error("{name} line {line}: {message}")]
    Row {
        /// The file.
        name: String,
        /// Its line (1-based, the header is line 1).
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads `u,v,x,y,z` rows (pixels; robot millimetres) from CSV text; `name` names it in errors.
pub fn parse_pairs(text: &str, name: &str) -> Result<Vec<Correspondence>, PairsError> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers =
        reader.headers().map_err(|e| PairsError::Row { name: name.into(), line: 1, message: e.to_string() })?;
    if headers.iter().collect::<Vec<_>>() != ["u", "v", "x", "y", "z"] {
        return Err(PairsError::Header { name: name.into(), found: headers.iter().collect::<Vec<_>>().join(",") });
    }
    let mut points = Vec::new();
    for (i, rec) in reader.deserialize::<[f64; 5]>().enumerate() {
        let [u, v, x, y, z] =
            rec.map_err(|e| PairsError::Row { name: name.into(), line: i + 2, message: e.to_string() })?;
        points.push(Correspondence { u, v, robot: Point3::new(x, y, z) });
    }
    Ok(points)
}

/// How the arm reaches its poses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WizardMode {
    /// The wizard drives the arm over a grid inside the safe box.
    Auto,
    /// The operator jogs the arm; the wizard reads its position.
    Manual,
}

/// What the wizard does: where it moves, what it looks for, when a fit is good.
#[derive(Debug, Clone)]
pub struct WizardSettings {
    /// Automatic grid or manual jogging.
    pub mode: WizardMode,
    /// The box the auto mode may move the tool point in, mm (robot frame).
    pub box_min: [f64; 3],
    /// The box's upper corner (its lower is `box_min`).
    pub box_max: [f64; 3],
    /// Grid points per axis in x and y, per height.
    pub grid: (usize, usize),
    /// Tool heights (mm) of the grid layers; at least two for the full solve.
    pub heights: Vec<f64>,
    /// Marker centre relative to the tool point, in the tool frame (mm; rotates with yaw).
    pub marker_offset: [f64; 3],
    /// The marker's colour and size limits.
    pub marker: MarkerSpec,
    /// Height of the table in the robot frame, mm.
    pub table_z: f64,
    /// Fits with a larger RMS reprojection error (px) are not saved without `force`.
    pub max_rms_px: f64,
    /// Manual mode: points to collect.
    pub manual_points: usize,
    /// Longest wait for one arm motion.
    pub motion_timeout: Duration,
    /// Frames to skip after a motion (camera latency, arm settling).
    pub settle_frames: usize,
}

/// The operator's side of the wizard (a terminal, or a script in tests).
pub trait Operator {
    /// Shows a line to the operator.
    fn say(&mut self, text: &str);
    /// Asks a yes/no question.
    fn confirm(&mut self, question: &str) -> bool;
    /// Manual mode: waits until the operator has jogged the arm; false when they are done.
    fn jogged(&mut self, point: usize, of: usize) -> bool;
}

/// Why the wizard stopped.
#[derive(Debug, thiserror::Error)]
pub enum WizardError {
    /// The camera gave no frame.
    #[error("camera check failed: no frame from {camera}: {source}")]
    Camera {
        /// The camera, as it describes itself.
        camera: String,
        /// The last capture error.
        source: FrameError,
    },
    /// The arm did not answer or refused.
    #[error("arm check failed: {0}")]
    Arm(#[from] ArmError),
    /// Too few markers were found to solve.
    #[error("only {got} usable points (need at least {need}); {advice}")]
    TooFewPoints {
        /// Points found.
        got: usize,
        /// Points needed.
        need: usize,
        /// What to change.
        advice: String,
    },
    /// The solver refused the points.
    #[error("solve failed: {0}")]
    Solve(#[from] grasp_calib::SolveError),
    /// Fewer than two heights for the full solve.
    #[error("{0} heights given; the full solve needs at least two different heights")]
    Heights(usize),
}

/// One collected point.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Pixel ↔ robot point.
    pub pair: Correspondence,
    /// The marker's radius, pixels.
    pub radius_px: f64,
}

/// What a wizard run produced.
#[derive(Debug)]
pub struct WizardResult {
    /// The points collected.
    pub samples: Vec<Sample>,
    /// Poses where the marker was not found, with the reason.
    pub misses: Vec<(ArmPose, String)>,
    /// The solved camera and its errors.
    pub solution: Solution,
    /// Whether the fit passed `max_rms_px`.
    pub good: bool,
    /// Whether the file should be written (a good fit, or the operator insisted).
    pub save: bool,
    /// The last frame seen (for the verification image).
    pub last_frame: Frame,
}

/// The auto mode's poses: a serpentine grid at each height (yaw 0).
pub fn grid_poses(s: &WizardSettings) -> Vec<ArmPose> {
    let (nx, ny) = s.grid;
    let lerp = |a: f64, b: f64, i: usize, n: usize| {
        if n <= 1 {
            (a + b) / 2.0
        } else {
            a + (b - a) * i as f64 / (n - 1) as f64
        }
    };
    let mut out = Vec::new();
    for &z in &s.heights {
        for j in 0..ny {
            for k in 0..nx {
                let i = if j % 2 == 0 { k } else { nx - 1 - k };
                out.push(ArmPose {
                    x: lerp(s.box_min[0], s.box_max[0], i, nx),
                    y: lerp(s.box_min[1], s.box_max[1], j, ny),
                    z,
                    yaw: 0.0,
                });
            }
        }
    }
    out
}

/// Where the marker is for a tool pose (offset rotated by the tool's yaw).
pub fn marker_position(pose: &ArmPose, offset: [f64; 3]) -> Point3<f64> {
    let (s, c) = pose.yaw.to_radians().sin_cos();
    Point3::new(pose.x + c * offset[0] - s * offset[1], pose.y + s * offset[0] + c * offset[1], pose.z + offset[2])
}

fn grab(camera: &mut dyn FrameSource, frame: &mut Frame, skip: usize) -> Result<(), WizardError> {
    let mut got = 0;
    let mut attempts = 0;
    loop {
        attempts += 1;
        match camera.next_frame(frame, Duration::from_secs(2)) {
            Ok(()) => {
                got += 1;
                if got > skip {
                    return Ok(());
                }
            }
            Err(source) if attempts >= (skip + 1) * 4 => {
                return Err(WizardError::Camera { camera: camera.describe(), source })
            }
            Err(_) => {}
        }
    }
}

/// Grabs a settled frame at `pose` and finds the marker in it.
fn observe(
    s: &WizardSettings,
    pose: ArmPose,
    camera: &mut dyn FrameSource,
    frame: &mut Frame,
    op: &mut dyn Operator,
) -> Result<Sample, String> {
    grab(camera, frame, s.settle_frames).map_err(|e| e.to_string())?;
    match marker::detect(&frame.rgb, frame.width, frame.height, &s.marker) {
        Ok(d) => {
            let p = marker_position(&pose, s.marker_offset);
            op.say(&format!("    marker at ({:.2}, {:.2}) px for ({:.1}, {:.1}, {:.1}) mm", d.u, d.v, p.x, p.y, p.z));
            Ok(Sample { pair: Correspondence { u: d.u, v: d.v, robot: p }, radius_px: d.radius_px })
        }
        Err(e) => {
            op.say(&format!("    no marker at ({:.0}, {:.0}, {:.0}): {e}", pose.x, pose.y, pose.z));
            Err(e.to_string())
        }
    }
}

/// Runs the wizard: check devices, collect, solve, judge.
pub fn run_wizard(
    s: &WizardSettings,
    camera: &mut dyn FrameSource,
    arm: &mut dyn Arm,
    op: &mut dyn Operator,
) -> Result<WizardResult, WizardError> {
    let mut frame = Frame::default();
    op.say(&format!("1/4 camera: {}", camera.describe()));
    grab(camera, &mut frame, 0)?;
    op.say(&format!("    ok, {}x{} frames", frame.width, frame.height));
    op.say(&format!("2/4 arm: {}", arm.describe()));
    arm.start_session()?;
    let (pose, _) = arm.position()?;
    op.say(&format!("    ok, tool at ({:.1}, {:.1}, {:.1}) mm", pose.x, pose.y, pose.z));

    let mut samples = Vec::new();
    let mut misses = Vec::new();
    match s.mode {
        WizardMode::Auto => {
            let mut heights = s.heights.clone();
            heights.sort_by(f64::total_cmp);
            heights.dedup();
            if heights.len() < 2 {
                return Err(WizardError::Heights(heights.len()));
            }
            let poses = grid_poses(s);
            op.say(&format!(
                "3/4 collecting: {} poses ({}x{} grid at heights {:?} mm) inside the safe box",
                poses.len(),
                s.grid.0,
                s.grid.1,
                s.heights
            ));
            for (i, p) in poses.iter().enumerate() {
                op.say(&format!("  pose {}/{}", i + 1, poses.len()));
                let moved = arm.move_to(*p).and_then(|id| arm.wait_done(id, s.motion_timeout));
                if let Err(e) = moved {
                    misses.push((*p, format!("arm: {e}")));
                    op.say(&format!("    arm did not reach it: {e}"));
                    continue;
                }
                match observe(s, *p, camera, &mut frame, op) {
                    Ok(sample) => samples.push(sample),
                    Err(e) => misses.push((*p, e)),
                }
            }
        }
        WizardMode::Manual => {
            op.say(&format!("3/4 collecting {} points: jog the arm so the marker is in view, at different places and at least two heights", s.manual_points));
            for i in 0..s.manual_points {
                if !op.jogged(i + 1, s.manual_points) {
                    break;
                }
                match arm.position() {
                    Ok((p, _)) => match observe(s, p, camera, &mut frame, op) {
                        Ok(sample) => samples.push(sample),
                        Err(e) => misses.push((p, e)),
                    },
                    Err(e) => op.say(&format!("    cannot read the arm's position: {e}")),
                }
            }
        }
    }
    let need = grasp_calib::solve::MIN_POINTS_FULL;
    if samples.len() < need {
        return Err(WizardError::TooFewPoints {
            got: samples.len(),
            need,
            advice: "make sure the marker is in view over the whole box (see the misses above), or enlarge the grid"
                .into(),
        });
    }
    op.say(&format!("4/4 solving from {} points ({} poses without a marker)", samples.len(), misses.len()));
    let pairs: Vec<Correspondence> = samples.iter().map(|s| s.pair).collect();
    let solution = solve_full(&pairs, s.table_z)?;
    op.say(&format!(
        "    RMS reprojection {:.2} px, RMS position (leave-one-out) {:.2} mm",
        solution.rms_reprojection_px, solution.rms_position_mm
    ));
    let good = solution.rms_reprojection_px <= s.max_rms_px;
    let save = good
        || op.confirm(&format!(
            "the fit is poor ({:.2} px > {:.2} px allowed): save anyway?",
            solution.rms_reprojection_px, s.max_rms_px
        ));
    Ok(WizardResult { samples, misses, solution, good, save, last_frame: frame })
}

/// The verification image: the frame, each detected marker (red cross) and where the solved
/// camera puts that robot point (green circle), and the table's 50 mm grid (blue) over the box.
pub fn verification_image(
    frame: &Frame,
    model: &CameraModel,
    samples: &[Sample],
    box_min: [f64; 3],
    box_max: [f64; 3],
    table_z: f64,
) -> image::RgbImage {
    use imageproc::drawing::{draw_cross_mut, draw_hollow_circle_mut, draw_line_segment_mut};
    let mut img = image::RgbImage::from_raw(frame.width as u32, frame.height as u32, frame.rgb.clone())
        .unwrap_or_else(|| image::RgbImage::new(frame.width as u32, frame.height as u32));
    let step = 50.0;
    let (x0, x1) = ((box_min[0] / step).floor() * step, (box_max[0] / step).ceil() * step);
    let (y0, y1) = ((box_min[1] / step).floor() * step, (box_max[1] / step).ceil() * step);
    let line = |img: &mut image::RgbImage, a: Point3<f64>, b: Point3<f64>| {
        // Short segments so lens distortion bends the lines as it should.
        let n = 20;
        let mut prev: Option<(f32, f32)> = None;
        for i in 0..=n {
            let p = a + (b - a) * (i as f64 / n as f64);
            let q = model.project(&p).map(|(u, v)| (u as f32, v as f32));
            if let (Some(pp), Some(qq)) = (prev, q) {
                draw_line_segment_mut(img, pp, qq, image::Rgb([40, 120, 255]));
            }
            prev = q;
        }
    };
    let mut x = x0;
    while x <= x1 + 1e-9 {
        line(&mut img, Point3::new(x, y0, table_z), Point3::new(x, y1, table_z));
        x += step;
    }
    let mut y = y0;
    while y <= y1 + 1e-9 {
        line(&mut img, Point3::new(x0, y, table_z), Point3::new(x1, y, table_z));
        y += step;
    }
    for s in samples {
        draw_cross_mut(&mut img, image::Rgb([255, 0, 0]), s.pair.u.round() as i32, s.pair.v.round() as i32);
        if let Some((u, v)) = model.project(&s.pair.robot) {
            draw_hollow_circle_mut(
                &mut img,
                (u.round() as i32, v.round() as i32),
                (s.radius_px.round() as i32).max(4),
                image::Rgb([0, 255, 0]),
            );
        }
    }
    img
}

/// Residual of each sample under a model, px.
pub fn residuals(model: &CameraModel, samples: &[Sample]) -> Vec<f64> {
    samples
        .iter()
        .map(|s| {
            model
                .project(&s.pair.robot)
                .map(|(u, v)| ((u - s.pair.u).powi(2) + (v - s.pair.v).powi(2)).sqrt())
                .unwrap_or(f64::INFINITY)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_parse_and_bad_rows_are_named() {
        let p = parse_pairs("u,v,x,y,z\n1,2,3,4,5\n", "p.csv").unwrap();
        assert_eq!((p[0].u, p[0].robot.z), (1.0, 5.0));
        assert!(parse_pairs("u,v,x\n", "p.csv").unwrap_err().to_string().contains("header"));
        let e = parse_pairs("u,v,x,y,z\n1,2,3,4,5\n1,2,three,4,5\n", "p.csv").unwrap_err().to_string();
        assert!(e.starts_with("p.csv line 3"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(grasp_fuzz::config())]
        /// Any CSV text is pairs or an error naming the file; no panic.
        #[test]
        fn fuzz_pairs_csv(text in grasp_fuzz::mutated_text("u,v,x,y,z\n320.5,240.25,200,0,0\n1e3,-5,150,-100,30\n")) {
            let _ = parse_pairs(&text, "p.csv");
        }
    }
}
