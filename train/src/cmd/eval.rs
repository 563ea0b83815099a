//! `grasp-train eval`.

use super::*;

/// Success rate of an ONNX model, decoding exactly as the edge binary does. Last line of the
/// plain output: `success: P% (k/n)`.
///
/// Example: grasp-train eval --model models/ggcnn-rgb.onnx --dataset cornell:../shared/data/cornell-crops --split test
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
    #[arg(long, default_value = "auto")]
    backend: BackendKind,
    /// Use the paper's single argmax instead of the model's peak finding.
    #[arg(long)]
    argmax: bool,
    /// Print one JSON object per image, then a JSON summary line.
    #[arg(long)]
    json: bool,
    /// Write annotated PNGs (ground truth green, prediction red, Q heat-map) into this directory.
    #[arg(long)]
    annotate: Option<PathBuf>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let Args { model, datasets, split: which, fold, split_mode, seed, max_samples, backend, argmax, json, annotate } =
        args;
    let file = GraspModelFile::read(&model)?;
    let b = load_backend(backend, &file, &BackendOptions::default())
        .with_context(|| format!("loading {}", model.display()))?;
    let mut decode = file.info.decode.clone();
    if argmax {
        decode.mode = PeakMode::Argmax;
    }
    let mut detector = GraspDetector::new(b, Some(decode));
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
    for &i in &indices {
        let name = store.refs[i].rgb.display().to_string();
        let stem =
            store.refs[i].rgb.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| i.to_string());
        let sample = store.get(i)?;
        let (grasps, _) = detector.detect(&sample.rgb, sample.width, sample.height, 1).with_context(|| name.clone())?;
        let g = grasps.first().copied();
        let success = g.is_some_and(|g| grasp_succeeds(&g, &sample.rects, IouMode::Exact));
        ok += success as usize;
        if json {
            println!(
                "{}",
                serde_json::json!({"image": name, "success": success, "grasp": g.map(|g| serde_json::json!({"x": g.x, "y": g.y, "angle": g.angle, "width": g.width, "quality": g.quality}))})
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
    if json {
        println!(
            "{}",
            serde_json::json!({"success_percent": pct, "successes": ok, "images": n, "backend": detector.backend_name()})
        );
    } else {
        println!("model {} on {n} images ({which}), backend {}", model.display(), detector.backend_name());
        println!("success: {pct:.2}% ({ok}/{n})");
    }
    Ok(())
}
