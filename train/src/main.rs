//! `grasp-train`: the desktop training tool of grasp-edge.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use grasp_models::contract::{ModelInfo, DEFAULT_INPUT_SIZE};
use grasp_models::detector::GraspDetector;
use grasp_models::metric::{grasp_succeeds, GraspRect, IouMode};
use grasp_models::preprocess::{resample_planar, ImageTransform};
use grasp_models::{load_backend, ArchKind, Architecture, AuxTask, BackendKind, BackendOptions, GraspModelFile, PeakMode};
use grasp_train::dataset::DatasetSpec;
use grasp_train::fit::{FitConfig, Fitter, SampleStore};
use grasp_train::net::{named_weights, GraspNet};
use grasp_train::split::{split, SplitMode, FOLDS};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "grasp-train", version, about = "Train, evaluate and export GG-CNN / MTG-CNN grasp models (MTG-CNN with positional loss, Prew et al.)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct TrainArgs {
    /// Training data as KIND:PATH, repeatable to mix sources. KIND: `cornell` (`*r.png` +
    /// `*cpos.txt`) or `jacquard` (Jacquard layout; also what `grasp-train synth` writes).
    #[arg(long = "dataset", required = true)]
    datasets: Vec<DatasetSpec>,
    /// Epochs (paper: 40).
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Square network input in pixels, a multiple of 4 (paper: 300).
    #[arg(long, default_value_t = DEFAULT_INPUT_SIZE)]
    input_size: usize,
    /// Cross-validation fold 0..4 (each holds out 20 %: half validation, half test).
    #[arg(long, default_value_t = 0)]
    fold: usize,
    /// `object` (no object in both training and evaluation) or `image`.
    #[arg(long, default_value = "object")]
    split: SplitMode,
    /// Seed for the split, initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Use at most this many samples (whole objects), e.g. for a quick run.
    #[arg(long)]
    max_samples: Option<usize>,
    /// Train without augmentation (random crop, zoom and rotation are on by default).
    #[arg(long)]
    no_augment: bool,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// Write a randomly initialised model (PyTorch's default initialisation, seeded) through the
    /// real ONNX exporter: for testing the runtime before a model is trained.
    ///
    /// Example: grasp-train init --arch mtgcnn --aux depth --seed 1 --out /tmp/random.onnx
    Init {
        /// Network: `ggcnn` (GG-CNN2) or `mtgcnn` (GG-CNN + auxiliary branch).
        #[arg(long, default_value = "ggcnn")]
        arch: ArchKind,
        /// Auxiliary task of `mtgcnn`: `depth` or `mask` (default depth).
        #[arg(long)]
        aux: Option<AuxTask>,
        /// Seed for libtorch's random initialisation.
        #[arg(long, default_value_t = 0)]
        seed: i64,
        /// Square input size in pixels (a multiple of 4).
        #[arg(long, default_value_t = DEFAULT_INPUT_SIZE)]
        input_size: usize,
        /// Also export the auxiliary output `aux` (left out by default: it is not used for grasping).
        #[arg(long)]
        with_aux: bool,
        /// Where to write the ONNX file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate synthetic scenes in the Jacquard layout (RGB, perfect depth, mask, antipodal grasps).
    ///
    /// Example: grasp-train synth --out /tmp/synth --count 200 --seed 1
    Synth {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 100)]
        count: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Image side in pixels.
        #[arg(long, default_value_t = 300)]
        size: usize,
    },
    /// Train a model; writes metrics.csv/json, val_success.png, last/best checkpoints and model.onnx
    /// into the run directory.
    ///
    /// Example: grasp-train fit --dataset cornell:../shared/data/cornell-crops --arch ggcnn --loss positional --out runs/gg
    Fit {
        #[command(flatten)]
        train: TrainArgs,
        #[arg(long, default_value = "ggcnn")]
        arch: ArchKind,
        /// Auxiliary task of `mtgcnn`: `depth` or `mask` (saliency). Samples without that target
        /// (e.g. Cornell has no depth) train the grasp outputs only.
        #[arg(long)]
        aux: Option<AuxTask>,
        /// `plain` (paper eq. 2) or `positional` (eq. 3).
        #[arg(long, default_value = "positional")]
        loss: String,
        /// Run directory.
        #[arg(long)]
        out: PathBuf,
        /// Continue from the run directory's last checkpoint (Adam's moments restart).
        #[arg(long)]
        resume: bool,
        /// Keep the auxiliary output in the exported ONNX.
        #[arg(long)]
        export_aux: bool,
    },
    /// Export a run directory's best checkpoint as an ONNX grasp model (also while it trains).
    ///
    /// Example: grasp-train export --run runs/gg --out models/ggcnn-rgb.onnx
    Export {
        /// Run directory of `grasp-train fit`.
        #[arg(long)]
        run: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Keep the auxiliary output `aux`.
        #[arg(long)]
        with_aux: bool,
    },
    /// Success rate of an ONNX model, decoding exactly as the edge binary does. Last line of the
    /// plain output: `success: P% (k/n)`.
    ///
    /// Example: grasp-train eval --model models/ggcnn-rgb.onnx --dataset cornell:../shared/data/cornell-crops --split test
    Eval {
        #[arg(long)]
        model: PathBuf,
        #[arg(long = "dataset", required = true)]
        datasets: Vec<DatasetSpec>,
        /// Which images: `all`, or `train`/`val`/`test` of --fold under --split-mode and --seed.
        #[arg(long, default_value = "all")]
        split: String,
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
    },
    /// Cross-validation of the paper's Table I (six models × folds); prints a markdown table.
    ///
    /// Example (toy scale): grasp-train cv --dataset jacquard:/tmp/synth --epochs 1 --input-size 64 --folds 2 --out runs/cv
    Cv {
        #[command(flatten)]
        train: TrainArgs,
        /// How many of the five folds to run.
        #[arg(long, default_value_t = FOLDS)]
        folds: usize,
        #[arg(long)]
        out: PathBuf,
    },
}

fn fit_config(t: &TrainArgs, arch: ArchKind, aux: Option<AuxTask>, loss: &str, export_aux: bool) -> FitConfig {
    FitConfig {
        datasets: t.datasets.iter().map(|d| format!("{}:{}", d.kind, d.path.display())).collect(),
        arch: arch.to_string(),
        aux: aux.map(|a| a.to_string()),
        loss: loss.into(),
        epochs: t.epochs,
        batch_size: t.batch_size.max(1),
        learning_rate: t.learning_rate,
        input_size: t.input_size,
        fold: t.fold,
        split: match t.split {
            SplitMode::Object => "object".into(),
            SplitMode::Image => "image".into(),
        },
        seed: t.seed,
        max_samples: t.max_samples,
        augment: !t.no_augment,
        export_aux,
    }
}

fn device(threads: Option<usize>) -> tch::Device {
    if let Some(n) = threads {
        tch::set_num_threads(n as i32);
    }
    let d = grasp_models::backend::torch::best_device();
    log::info!("training on {d:?}");
    d
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse().command {
        Command::Init { arch, aux, seed, input_size, with_aux, out } => {
            let arch = Architecture::new(arch, aux).map_err(anyhow::Error::msg)?;
            tch::manual_seed(seed);
            let vs = tch::nn::VarStore::new(tch::Device::Cpu);
            let _net = GraspNet::new(&vs, &arch);
            let mut info = ModelInfo::new(arch.kind, arch.aux_task(), input_size);
            info.provenance = format!("random initialisation (grasp-train init, seed {seed}); not trained");
            let bytes = grasp_models::onnx::export(&arch, &named_weights(&vs)?, &info, &grasp_models::onnx::ExportOptions::with_aux(with_aux))?;
            std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
            let params = if with_aux { arch.parameter_count() } else { arch.without_aux().parameter_count() };
            println!("wrote {} ({} {params} parameters, input {input_size}x{input_size})", out.display(), arch.kind);
        }
        Command::Synth { out, count, seed, size } => {
            Architecture::check_input_size(size).map_err(anyhow::Error::msg)?;
            let bar = indicatif::ProgressBar::new(count as u64);
            bar.set_style(indicatif::ProgressStyle::with_template("synth [{bar:30}] {pos}/{len} scenes ETA {eta}").expect("valid template"));
            grasp_train::synth::write_dataset(&out, count, seed, size, |n| bar.set_position(n as u64))?;
            bar.finish_and_clear();
            println!("wrote {count} scenes ({size}x{size}, seed {seed}) to {} (Jacquard layout)", out.display());
        }
        Command::Fit { train, arch, aux, loss, out, resume, export_aux } => {
            let arch = Architecture::new(arch, aux).map_err(anyhow::Error::msg)?;
            let aux = arch.aux_task();
            let cfg = fit_config(&train, arch.kind, aux, &loss, export_aux);
            cfg.loss_kind().map_err(anyhow::Error::msg)?;
            let device = device(train.threads);
            let o = Fitter { config: cfg, out, device, resume, progress: true }.run()?;
            println!("best epoch {}: validation success {:.2}%; model: {}", o.best_epoch, o.best_val_success, o.onnx.display());
        }
        Command::Export { run, out, with_aux } => {
            let path = grasp_train::fit::export_run(&run, &out, with_aux)?;
            println!("wrote {}", path.display());
        }
        Command::Eval { model, datasets, split: which, fold, split_mode, seed, max_samples, backend, argmax, json, annotate } => {
            let file = GraspModelFile::read(&model)?;
            let b = load_backend(backend, &file, &BackendOptions::default()).with_context(|| format!("loading {}", model.display()))?;
            let mut decode = file.info.decode.clone();
            if argmax {
                decode.mode = PeakMode::Argmax;
            }
            let mut detector = GraspDetector::new(b, Some(decode));
            let mut store = SampleStore::open(&datasets, max_samples, seed)?;
            let s = split(&store.refs, fold, split_mode, seed);
            let indices: Vec<usize> = match which.as_str() {
                "all" => (0..store.refs.len()).collect(),
                "train" => s.train,
                "val" => s.val,
                "test" => s.test,
                other => bail!("--split {other}: expected all, train, val or test"),
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
                let stem = store.refs[i].rgb.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| i.to_string());
                let sample = store.get(i)?;
                let (grasps, _) = detector.detect(&sample.rgb, sample.width, sample.height, 1).with_context(|| name.clone())?;
                let g = grasps.first().copied();
                let success = g.is_some_and(|g| grasp_succeeds(&g, &sample.rects, IouMode::Exact));
                ok += success as usize;
                if json {
                    println!("{}", serde_json::json!({"image": name, "success": success, "grasp": g.map(|g| serde_json::json!({"x": g.x, "y": g.y, "angle": g.angle, "width": g.width, "quality": g.quality}))}));
                }
                if let Some(dir) = &annotate {
                    let t = ImageTransform::center_crop(sample.width, sample.height, size);
                    resample_planar(&t, &sample.rgb, sample.width, sample.height, 3, size, &mut view, |v| v as f32)?;
                    let gt: Vec<GraspRect> = sample.rects.iter().map(|r| t.rect_to_output(r)).collect();
                    let pred = g.map(|g| t.rect_to_output(&GraspRect::from_grasp(&g)));
                    grasp_train::report::annotate(&dir.join(format!("{stem}.png")), &view, size, &detector.maps().q, &gt, pred.as_ref())?;
                }
            }
            let n = indices.len();
            let pct = 100.0 * ok as f64 / n as f64;
            if json {
                println!("{}", serde_json::json!({"success_percent": pct, "successes": ok, "images": n, "backend": detector.backend_name()}));
            } else {
                println!("model {} on {n} images ({which}), backend {}", model.display(), detector.backend_name());
                println!("success: {pct:.2}% ({ok}/{n})");
            }
        }
        Command::Cv { train, folds, out } => {
            if folds == 0 || folds > FOLDS {
                bail!("--folds must be 1..{FOLDS}");
            }
            let base = fit_config(&train, ArchKind::GgCnn, None, "plain", false);
            let device = device(train.threads);
            let rows = grasp_train::cv::run(&base, folds, &out, device, true)?;
            println!("{}", grasp_train::cv::markdown(&rows));
        }
    }
    Ok(())
}
