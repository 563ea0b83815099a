//! `grasp-train eval`.

use super::*;
use grasp_models::metric::{self, Outcome};
use grasp_train::posed::ViewedEval;

/// Which images `eval` scores.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EvalSplit {
    /// Every image of the datasets.
    All,
    /// The fold's training images.
    Train,
    /// The fold's validation images.
    Val,
    /// The fold's test images.
    Test,
}

impl std::fmt::Display for EvalSplit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = clap::ValueEnum::to_possible_value(self).expect("no variant is skipped");
        f.write_str(v.get_name())
    }
}

/// Success rate of an ONNX model, decoding exactly as the edge binary does. Last line of the
/// plain output: `success: P% (k/n)`; the line before counts the failures by the decision that
/// failed: `place` (the top grasp's centre is in no ground-truth rectangle), `angle` (it is, but
/// ≥ 30° off every rectangle there), `width` (place and angle right, IoU ≤ 0.25), `none`.
///
/// With --calibration the model sees each image's table view, as `grasp-edge run` does with
/// `[view] mode = "table"`: the table around the image centre's point (or --view-center-mm),
/// warped through the camera to S×S pixels at the model's declared scale (or --view-mm-per-px);
/// the ground truth is mapped into the view through the table plane.
///
/// Examples:
///   grasp-train eval --model models/ggcnn-rgb.onnx --dataset cornell:../shared/data/cornell-crops --split test
///   grasp-train eval --model m.onnx --dataset synth:/tmp/rig600 --calibration /tmp/rig600/calibration.toml
#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: PathBuf,
    #[arg(long = "dataset", required = true)]
    datasets: Vec<DatasetSpec>,
    /// Which images: `all`, or `train`/`val`/`test` of --fold under --split-mode and --seed.
    #[arg(long, value_enum, default_value = "all")]
    split: EvalSplit,
    #[arg(long, default_value_t = 0)]
    fold: usize,
    #[arg(long, default_value = "object")]
    split_mode: SplitMode,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    max_samples: Option<usize>,
    #[command(flatten)]
    run: RunModelArgs,
    /// Print one JSON object per image, then a JSON summary line.
    #[arg(long)]
    json: bool,
    /// Write annotated PNGs (ground truth green, prediction red, Q heat-map) into this directory.
    #[arg(long)]
    annotate: Option<PathBuf>,
    /// The camera's calibration (calibration.toml): score the table view instead of the centre crop.
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Table mm per view pixel (default: the model's grasp.mm_per_px).
    #[arg(long, requires = "calibration")]
    view_mm_per_px: Option<f64>,
    /// Centre of the viewed region on the table, robot X,Y in mm (default: where the image centre's ray meets the table).
    #[arg(long, requires = "calibration", value_name = "X,Y", value_parser = grasp_calib::view::parse_table_point)]
    view_center_mm: Option<[f64; 2]>,
    /// Rescale each image about its centre first (0.7: objects 0.7 times as large, as from a camera
    /// 1/0.7 times as high; borders replicated): the scale robustness of the centre crop.
    #[arg(long, conflicts_with = "calibration", value_parser = parse_rescale)]
    rescale: Option<f32>,
}

/// Whether the grasp's centre lies where training put Q = 1: the centre third of some ground-truth
/// rectangle (`gt::q_target_region`), where the positional loss supervises angle and width.
fn on_q_target(g: &grasp_models::Grasp, rects: &[GraspRect]) -> bool {
    rects.iter().any(|r| grasp_train::gt::q_target_region(r).contains(g.x as f64, g.y as f64))
}

fn parse_rescale(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(f) if f > 0.0 && f.is_finite() => Ok(f),
        _ => Err(format!("`{s}`: expected a factor > 0 such as 0.7")),
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let Args {
        model,
        datasets,
        split: which,
        fold,
        split_mode,
        seed,
        max_samples,
        run: run_model,
        json,
        annotate,
        calibration,
        view_mm_per_px,
        view_center_mm,
        rescale,
    } = args;
    let file = GraspModelFile::read(&model)?;
    let table_view = match &calibration {
        Some(path) => {
            let calib = grasp_calib::CalibrationFile::load(path)?;
            let m = view_mm_per_px.or(file.info.mm_per_px.map(f64::from)).with_context(|| {
                "the model declares no training scale (grasp.mm_per_px): give --view-mm-per-px".to_string()
            })?;
            let v = ViewedEval::new(&calib, file.info.input_size, m, view_center_mm)
                .with_context(|| format!("--calibration {}", path.display()))?;
            log::info!(
                "table view: {s}x{s} px at {m} mm/px centred on ({:.0}, {:.0}) mm",
                v.center_mm[0],
                v.center_mm[1],
                s = file.info.input_size
            );
            Some(v)
        }
        None => None,
    };
    let mut detector = run_model.detector(&file, &model)?;
    let mut store = SampleStore::open(&datasets, max_samples, seed)?;
    let s = split(&store.refs, fold, split_mode, seed);
    let indices: Vec<usize> = match which {
        EvalSplit::All => (0..store.refs.len()).collect(),
        EvalSplit::Train => s.train,
        EvalSplit::Val => s.val,
        EvalSplit::Test => s.test,
    };
    if indices.is_empty() {
        bail!("no images in split `{which}`");
    }
    if let Some(dir) = &annotate {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let size = file.info.input_size;
    let (mut ok, mut view) = (0usize, Vec::new());
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    let mut width_pairs = Vec::new();
    for &i in &indices {
        let name = store.refs[i].rgb.display().to_string();
        let stem =
            store.refs[i].rgb.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| i.to_string());
        let stored = store.get(i)?;
        let viewed = match (&table_view, rescale) {
            (Some(v), _) => Some(v.apply(stored).with_context(|| name.clone())?),
            (None, Some(f)) => Some(grasp_train::augment::rescaled_about_centre(stored, f)),
            (None, None) => None,
        };
        let sample = viewed.as_ref().unwrap_or(stored);
        let (grasps, _) = detector.detect(&sample.rgb, sample.width, sample.height, 1).with_context(|| name.clone())?;
        let g = grasps.first().copied();
        let outcome = metric::outcome(g.as_ref(), &sample.rects, IouMode::Exact);
        if let Some((g, label)) = g.as_ref().and_then(|g| Some((g, metric::nearest_label_opening(g, &sample.rects)?))) {
            width_pairs.push((label, g.width as f64));
        }
        let success = outcome == Outcome::Success;
        ok += success as usize;
        *outcomes.entry(outcome.name()).or_insert(0) += 1;
        if json {
            println!(
                "{}",
                serde_json::json!({"image": name, "success": success, "outcome": outcome.name(), "on_q_target": g.is_some_and(|g| on_q_target(&g, &sample.rects)), "grasp": g.map(|g| serde_json::json!({"x": g.x, "y": g.y, "angle": g.angle, "width": g.width, "quality": g.quality}))})
            );
        }
        if let Some(dir) = &annotate {
            let t = ImageTransform::center_crop(sample.width, sample.height, size);
            resample_planar(&t, &sample.rgb, sample.width, sample.height, 3, size, &mut view, |v| v as f32)?;
            let gt: Vec<GraspRect> = sample.rects.iter().map(|r| t.rect_to_output(r)).collect();
            let pred = g.map(|g| t.rect_to_output(&GraspRect::from_grasp(&g)));
            grasp_train::report::annotate(
                &dir.join(format!("{stem}.png")),
                &view,
                size,
                &detector.maps().q,
                &gt,
                pred.as_ref(),
            )?;
        }
    }
    let n = indices.len();
    let pct = 100.0 * ok as f64 / n as f64;
    let widths = metric::width_fit(&width_pairs);
    if json {
        let widths = widths.map(|w| serde_json::json!({"images": w.images, "median_ratio": w.median_ratio, "slope": w.slope, "correlation": w.correlation}));
        println!(
            "{}",
            serde_json::json!({"success_percent": pct, "successes": ok, "images": n, "outcomes": outcomes, "widths": widths, "backend": detector.backend_name()})
        );
    } else {
        let seen = match &table_view {
            Some(v) => format!("table view at {:.3} mm/px", v.view.mm_per_px()),
            None => match rescale {
                Some(f) => format!("centre crop, rescaled x{f}"),
                None => "centre crop".into(),
            },
        };
        println!("model {} on {n} images ({which}, {seen}), backend {}", model.display(), detector.backend_name());
        // What failed, one image each: the Q peak's place, the angle there, or the width.
        let failed: Vec<String> = Outcome::ALL[1..]
            .iter()
            .map(|o| format!("{} {}", o.name(), outcomes.get(o.name()).copied().unwrap_or(0)))
            .collect();
        println!("failures: {}", failed.join(", "));
        // Whether the width head follows the object (slope 1) or predicts one opening for all.
        if let Some(w) = widths {
            println!(
                "widths: predicted/labelled {:.2} (median), slope {:.2}, correlation {:.2} over {} images (label: median of the {} nearest rectangles)",
                w.median_ratio, w.slope, w.correlation, w.images, metric::NEAREST_LABELS
            );
        }
        println!("success: {pct:.2}% ({ok}/{n})");
    }
    Ok(())
}
