//! One module per subcommand of `grasp-train`, each with its clap arguments and its `run`, and
//! what they share: the training arguments and the device.
#![allow(unused_imports)] // one prelude of imports for every subcommand module

pub mod cv;
pub mod eval;
pub mod export;
pub mod fit;
pub mod init;
pub mod poses;
pub mod synth;

pub use anyhow::{bail, Context, Result};
pub use clap::Args;
pub use grasp_models::contract::{ModelInfo, DEFAULT_INPUT_SIZE};
pub use grasp_models::detector::GraspDetector;
pub use grasp_models::metric::{grasp_succeeds, GraspRect, IouMode};
pub use grasp_models::preprocess::{resample_planar, ImageTransform};
pub use grasp_models::{
    load_backend, ArchKind, Architecture, AuxTask, BackendKind, BackendOptions, GraspModelFile, PeakMode,
};
pub use grasp_train::dataset::DatasetSpec;
pub use grasp_train::fit::{FitConfig, Fitter, LrSchedule, SampleStore};
pub use grasp_train::loss::LossKind;
pub use grasp_train::net::{named_weights, GraspNet};
pub use grasp_train::split::{split, SplitMode, FOLDS};
pub use std::path::PathBuf;

/// How `eval` and `poses` run a model: the backend and the decoding.
#[derive(Args, Clone, Copy)]
pub struct RunModelArgs {
    #[arg(long, default_value = "auto")]
    pub backend: BackendKind,
    /// Use the paper's single argmax instead of the model's peak finding.
    #[arg(long)]
    pub argmax: bool,
}

impl RunModelArgs {
    /// A detector for `file` (read from `path`), decoding as the model says or by argmax.
    pub fn detector(&self, file: &GraspModelFile, path: &std::path::Path) -> Result<GraspDetector> {
        let b = load_backend(self.backend, file, &BackendOptions::default())
            .with_context(|| format!("loading {}", path.display()))?;
        let mut decode = file.info.decode.clone();
        if self.argmax {
            decode.mode = PeakMode::Argmax;
        }
        Ok(GraspDetector::new(b, Some(decode)))
    }
}

/// The training settings `fit` and `cv` share.
#[derive(Args, Clone)]
pub struct TrainArgs {
    /// Training data as KIND:PATH (required to train), repeatable to mix sources. KIND: `cornell`
    /// (`*r.png` + `*cpos.txt`) or `jacquard` (Jacquard layout; also what `grasp-train synth` writes).
    #[arg(long = "dataset")]
    pub datasets: Vec<DatasetSpec>,
    /// Epochs (paper: 40).
    #[arg(long, default_value_t = 40)]
    pub epochs: usize,
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub learning_rate: f64,
    /// Learning-rate schedule: `constant` (the paper's) or `cosine` (decays to 1 % by the last epoch).
    #[arg(long, value_enum, default_value_t = LrSchedule::Constant)]
    pub lr_schedule: LrSchedule,
    /// Square network input in pixels, a multiple of 4 (paper: 300).
    #[arg(long, default_value_t = DEFAULT_INPUT_SIZE)]
    pub input_size: usize,
    /// Cross-validation fold 0..4 (each holds out 20 %: half validation, half test).
    #[arg(long, default_value_t = 0)]
    pub fold: usize,
    /// `object` (no object in both training and evaluation) or `image`.
    #[arg(long, default_value = "object")]
    pub split: SplitMode,
    /// Seed for the split, initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use at most this many samples (whole objects), e.g. for a quick run.
    #[arg(long)]
    pub max_samples: Option<usize>,
    /// Train without augmentation (random crop, zoom and rotation are on by default).
    #[arg(long)]
    pub no_augment: bool,
    /// The random zoom's range MIN,MAX, drawn log-uniformly (paper: 1,1.25). Below 1 the view
    /// shrinks the image inside replicated borders: `0.6,1.7` covers cameras from 0.6× to 1.7×
    /// the training data's height (e.g. 0.3–0.9 m around 0.5 m).
    #[arg(long, value_name = "MIN,MAX", default_value = "1,1.25", value_parser = parse_zoom)]
    pub zoom: (f32, f32),
    /// Validate, keep and export an exponential moving average of the weights with this decay
    /// per step (e.g. 0.998: the last ~500 steps), instead of the last step's weights. Smooths
    /// the end of a fine-tune, where single epochs swing by points.
    #[arg(long, value_name = "DECAY", value_parser = parse_ema)]
    pub ema: Option<f64>,
    /// Weight of the width term in the loss (paper: 1). Under the positional loss the width
    /// term is far smaller than the Q term and the width head learns little more than a
    /// constant opening; a larger weight makes it follow the object (RESULTS.md).
    #[arg(long, default_value_t = 1.0, value_parser = parse_positive)]
    pub width_weight: f64,
    /// Train only this grasp output's 1×1 head (q, cos, sin or width) of the --init-from model;
    /// every other weight stays as it is.
    #[arg(long, value_name = "OUTPUT", value_parser = clap::builder::TypedValueParser::map(clap::builder::PossibleValuesParser::new(grasp_models::layout::GRASP_OUTPUTS), String::from))]
    pub head_only: Option<String>,
    /// Validate on the validation images rescaled about their centre by each factor (comma
    /// separated, e.g. 0.7,1,1.4: the camera 1/0.7 times as high, as trained, 1/1.4 times as
    /// high) and keep the epoch with the most successes over all: selects for scale robustness.
    #[arg(long, value_name = "F,F,...", value_delimiter = ',', default_value = "1", value_parser = parse_positive)]
    pub val_rescale: Vec<f64>,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `MIN,MAX` with 0 < MIN ≤ MAX.
fn parse_zoom(s: &str) -> Result<(f32, f32), String> {
    let (a, b) = s.split_once(',').ok_or_else(|| format!("`{s}`: expected MIN,MAX such as 0.6,1.7"))?;
    let num = |v: &str| v.trim().parse::<f32>().map_err(|e| format!("`{v}`: {e}"));
    let (min, max) = (num(a)?, num(b)?);
    if !(min > 0.0 && min <= max && max.is_finite()) {
        return Err(format!("`{s}`: need 0 < MIN <= MAX"));
    }
    Ok((min, max))
}

/// A finite number > 0.
fn parse_positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        Ok(v) => Err(format!("must be a finite number above 0, not {v}")),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

/// An EMA decay: 0 < DECAY < 1.
fn parse_ema(s: &str) -> Result<f64, String> {
    let d: f64 = s.parse().map_err(|_| format!("`{s}` is not a number (e.g. 0.998)"))?;
    if d > 0.0 && d < 1.0 {
        Ok(d)
    } else {
        Err(format!("the EMA decay must lie strictly between 0 and 1, not {d}"))
    }
}

/// The run settings of the shared training arguments.
pub fn fit_config(t: &TrainArgs, arch: ArchKind, aux: Option<AuxTask>, loss: LossKind, export_aux: bool) -> FitConfig {
    FitConfig {
        datasets: t.datasets.clone(),
        arch,
        aux,
        loss,
        epochs: t.epochs,
        batch_size: t.batch_size.max(1),
        learning_rate: t.learning_rate,
        lr_schedule: t.lr_schedule,
        input_size: t.input_size,
        fold: t.fold,
        split: t.split,
        seed: t.seed,
        max_samples: t.max_samples,
        augment: !t.no_augment,
        zoom: t.zoom,
        export_aux,
        init_from: None,
        ema: t.ema,
        width_weight: t.width_weight,
        head_only: t.head_only.clone(),
        val_rescale: t.val_rescale.clone(),
    }
}

/// The training device (CUDA when libtorch finds one), with the thread count set.
pub fn device(threads: Option<usize>) -> tch::Device {
    if let Some(n) = threads {
        tch::set_num_threads(n as i32);
    }
    let d = grasp_models::backend::torch::best_device();
    log::info!("training on {d:?}");
    d
}
