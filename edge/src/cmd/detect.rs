//! `grasp-edge detect`: grasps in image files, printed as text or JSON lines.

use anyhow::{bail, Context, Result};
use grasp_calib::{CalibrationFile, RobotGrasp, TableView, ViewRegion};
use grasp_devices::camera::decode_image_file;
use grasp_edge::config::MAX_TOP_K;
use grasp_models::contract::ImageFit;
use grasp_models::detector::{GraspDetector, StageTimes};
use grasp_models::{load_backend, BackendKind, BackendOptions, Grasp, GraspModelFile};
use std::path::PathBuf;

/// Detect grasps in image files and print them (best first, in each image's pixel coordinates:
/// x right, y down, angle in radians counter-clockwise on screen, width = opening in pixels).
///
/// Each image is centre-cropped to a square and resized to the model's input, as the model's
/// metadata (`grasp.image_fit`) says; results are mapped back to the original image.
///
/// With --calibration the model sees the table view instead, as `grasp-edge run` does with
/// `[view] mode = "table"`: the table around the point under the image centre (or --view-center-mm)
/// warped to the model's input at its training scale (or --view-mm-per-px). Grasps are then printed
/// in the robot frame: x, y in mm on the table, yaw in degrees, opening in mm.
///
/// Example: grasp-edge detect --model models/ggcnn-rgb.onnx --json frame.png
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The ONNX grasp model (see models/README.md for the contract).
    #[arg(long)]
    model: PathBuf,
    /// Inference backend: `auto` (torch on CUDA if compiled in and a GPU is present, else tract),
    /// `tract` (CPU), `torch` (libtorch, needs a build with `--features torch`).
    #[arg(long, default_value = "auto")]
    backend: BackendKind,
    /// Number of grasps to report per image.
    #[arg(long, default_value_t = 1)]
    top_k: usize,
    /// CPU threads for inference (default: the backend's choice).
    #[arg(long)]
    threads: Option<usize>,
    /// One JSON object per image and line instead of text.
    #[arg(long)]
    json: bool,
    /// The camera's calibration (grasp-calib's calibration.toml): detect on the table view and
    /// print robot-frame grasps. Needed for models that take the table view.
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Table view: mm per model pixel (default: the model's grasp.mm_per_px).
    #[arg(long, requires = "calibration")]
    view_mm_per_px: Option<f64>,
    /// Table view: centre of the region, robot x,y in mm (default: under the image centre).
    #[arg(long, requires = "calibration", value_name = "X,Y", value_parser = grasp_calib::view::parse_table_point)]
    view_center_mm: Option<[f64; 2]>,
    /// Image files (PNG or JPEG).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(serde::Serialize)]
struct JsonGrasp {
    x: f32,
    y: f32,
    angle: f32,
    width: f32,
    quality: f32,
}

#[derive(serde::Serialize)]
struct JsonTimes {
    pre: f64,
    infer: f64,
    post: f64,
}

#[derive(serde::Serialize)]
struct JsonDetection<'a> {
    image: &'a str,
    backend: &'a str,
    grasps: Vec<JsonGrasp>,
    ms: JsonTimes,
}

fn print_json(path: &str, backend: &str, grasps: &[Grasp], ms: &StageTimes) -> Result<()> {
    let line = JsonDetection {
        image: path,
        backend,
        grasps: grasps
            .iter()
            .map(|g| JsonGrasp { x: g.x, y: g.y, angle: g.angle, width: g.width, quality: g.quality })
            .collect(),
        ms: JsonTimes { pre: ms.pre, infer: ms.infer, post: ms.post },
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(())
}

fn print_text(path: &str, backend: &str, grasps: &[Grasp], ms: &StageTimes) {
    println!("{path} ({backend}, pre {:.1} ms, infer {:.1} ms, post {:.1} ms):", ms.pre, ms.infer, ms.post);
    if grasps.is_empty() {
        println!("  no grasp above the quality threshold");
    }
    for g in grasps {
        println!(
            "  x {:.1} y {:.1} angle {:.1}° width {:.1} px quality {:.3}",
            g.x,
            g.y,
            g.angle.to_degrees(),
            g.width,
            g.quality
        );
    }
}

/// Loads the model once and detects in every image.
pub fn run(args: Args) -> Result<()> {
    anyhow::ensure!(
        (1..=MAX_TOP_K).contains(&args.top_k),
        "--top-k {}: report 1 to {MAX_TOP_K} grasps per image",
        args.top_k
    );
    let file = GraspModelFile::read(&args.model)?;
    let backend = load_backend(args.backend, &file, &BackendOptions { threads: args.threads })
        .with_context(|| format!("loading {} with backend {}", args.model.display(), args.backend))?;
    let view = match &args.calibration {
        Some(path) => Some(table_view(&file, path, args.view_mm_per_px, args.view_center_mm)?),
        None if file.info.image_fit == ImageFit::TableView => bail!(
            "{} takes the table view (grasp.image_fit = table_view): give the camera's calibration with --calibration",
            args.model.display()
        ),
        None => None,
    };
    let mut detector = GraspDetector::new(backend, None);
    let backend_name = detector.backend_name();
    let mut view_rgb = Vec::new();
    for path in &args.images {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read image {}", path.display()))?;
        let (rgb, w, h) = decode_image_file(&bytes).map_err(|e| anyhow::anyhow!("image {}: {e}", path.display()))?;
        let shown = path.display().to_string();
        if let Some((view, z)) = &view {
            let (vw, vh) = view.image_size();
            anyhow::ensure!((w, h) == (vw, vh), "image {shown} is {w}x{h} but the calibration is for {vw}x{vh}");
            let t0 = std::time::Instant::now();
            view.warp(&rgb, &mut view_rgb);
            let warp_ms = t0.elapsed().as_secs_f64() * 1e3;
            let (grasps, mut ms) = detector
                .detect(&view_rgb, view.size(), view.size(), args.top_k)
                .with_context(|| format!("detecting grasps in {}", path.display()))?;
            ms.pre += warp_ms;
            let robot: Vec<RobotGrasp> = grasps
                .iter()
                .map(|g| view.grasp_to_robot(g.x as f64, g.y as f64, g.angle as f64, g.width as f64, *z))
                .collect::<Result<_, _>>()
                .with_context(|| format!("a grasp in {shown} has no table point"))?;
            print_robot(&shown, &backend_name, &robot, grasps, &ms, args.json)?;
            continue;
        }
        let (grasps, ms) = detector
            .detect(&rgb, w, h, args.top_k)
            .with_context(|| format!("detecting grasps in {}", path.display()))?;
        if args.json {
            print_json(&shown, &backend_name, grasps, &ms)?;
        } else {
            print_text(&shown, &backend_name, grasps, &ms);
        }
    }
    Ok(())
}

/// The table view of `calibration` for the model, and the table height (grasps lie on it).
fn table_view(
    file: &GraspModelFile,
    calibration: &std::path::Path,
    mm_per_px: Option<f64>,
    center: Option<[f64; 2]>,
) -> Result<(TableView, f64)> {
    let calib = CalibrationFile::load(calibration)?;
    let camera = calib.model();
    let center = match center {
        Some(c) => c,
        None => calib.image_center_on_table().with_context(|| {
            format!("{}: the image centre does not see the table; give --view-center-mm", calibration.display())
        })?,
    };
    // The region is what the model sees at its scale: S pixels across.
    let scale = mm_per_px.or(file.info.mm_per_px.map(f64::from));
    let size_mm = scale.map_or(f64::MIN_POSITIVE, |m| m * file.info.input_size as f64);
    let view = grasp_edge::app::view_of(&calib, &file.info, ViewRegion { center_mm: center, size_mm }, mm_per_px)
        .map_err(|e| match e {
            grasp_edge::app::ViewSetupError::NoScale => {
                anyhow::anyhow!("the model declares no training scale (grasp.mm_per_px): give --view-mm-per-px")
            }
            e => anyhow::anyhow!("--calibration {}: {e}", calibration.display()),
        })?;
    Ok((view, camera.table_z))
}

#[derive(serde::Serialize)]
struct JsonRobotGrasp {
    x_mm: f64,
    y_mm: f64,
    z_mm: f64,
    yaw_deg: f64,
    opening_mm: f64,
    quality: f32,
}

fn print_robot(
    path: &str,
    backend: &str,
    robot: &[RobotGrasp],
    grasps: &[Grasp],
    ms: &StageTimes,
    json: bool,
) -> Result<()> {
    let rows: Vec<JsonRobotGrasp> = robot
        .iter()
        .zip(grasps)
        .map(|(r, g)| JsonRobotGrasp {
            x_mm: r.x,
            y_mm: r.y,
            z_mm: r.z,
            yaw_deg: r.yaw.to_degrees(),
            opening_mm: r.opening_mm,
            quality: g.quality,
        })
        .collect();
    if json {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            image: &'a str,
            backend: &'a str,
            view: &'static str,
            grasps: &'a [JsonRobotGrasp],
            ms: JsonTimes,
        }
        let ms = JsonTimes { pre: ms.pre, infer: ms.infer, post: ms.post };
        println!("{}", serde_json::to_string(&Line { image: path, backend, view: "table", grasps: &rows, ms })?);
        return Ok(());
    }
    println!("{path} ({backend}, table view, pre {:.1} ms, infer {:.1} ms, post {:.1} ms):", ms.pre, ms.infer, ms.post);
    if rows.is_empty() {
        println!("  no grasp above the quality threshold");
    }
    for r in &rows {
        println!(
            "  x {:.1} mm y {:.1} mm yaw {:.1}° opening {:.1} mm quality {:.3}",
            r.x_mm, r.y_mm, r.yaw_deg, r.opening_mm, r.quality
        );
    }
    Ok(())
}
