//! `grasp-edge detect`: grasps in image files, printed as text or JSON lines.

use anyhow::{Context, Result};
use grasp_devices::camera::decode_image_file;
use grasp_edge::config::MAX_TOP_K;
use grasp_models::detector::{GraspDetector, StageTimes};
use grasp_models::{load_backend, BackendKind, BackendOptions, Grasp, GraspModelFile};
use std::path::PathBuf;

/// Detect grasps in image files and print them (best first, in each image's pixel coordinates:
/// x right, y down, angle in radians counter-clockwise on screen, width = opening in pixels).
///
/// Each image is centre-cropped to a square and resized to the model's input, as the model's
/// metadata (`grasp.image_fit`) says; results are mapped back to the original image.
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
    let mut detector = GraspDetector::new(backend, None);
    let backend_name = detector.backend_name();
    for path in &args.images {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read image {}", path.display()))?;
        let (rgb, w, h) = decode_image_file(&bytes).map_err(|e| anyhow::anyhow!("image {}: {e}", path.display()))?;
        let (grasps, ms) = detector
            .detect(&rgb, w, h, args.top_k)
            .with_context(|| format!("detecting grasps in {}", path.display()))?;
        let shown = path.display().to_string();
        if args.json {
            print_json(&shown, &backend_name, grasps, &ms)?;
        } else {
            print_text(&shown, &backend_name, grasps, &ms);
        }
    }
    Ok(())
}
