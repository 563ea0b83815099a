//! Training: Adam on batches of augmented views, the paper's losses, validation success under the
//! grasp metric each epoch, checkpoints (last and best), resume, metrics files, the Fig. 6 plot,
//! and the export of the best weights as a contract-conforming ONNX model.

use crate::augment::Augment;
use crate::dataset::{load, scan, DatasetError, DatasetSpec, Sample, SampleRef};
use crate::gt::{prepare, Prepared};
use crate::loss::{loss_with_width_weight, LossKind, Targets};
use crate::net::{named_weights, GraspNet};
use crate::split::{split, Split, SplitMode};
use anyhow::{bail, Context, Result};
use grasp_models::arch::{ArchError, ArchKind, Architecture, AuxTask};
use grasp_models::contract::ModelInfo;
use grasp_models::decode::{Decoder, GraspMaps, PeakMode};
use grasp_models::metric::{grasp_succeeds, IouMode};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn::OptimizerConfig;
use tch::{Device, Kind, Tensor};

/// Samples decoded once are kept up to this many bytes (the full Jacquard set is far larger).
const CACHE_BYTES: usize = 2 << 30;

/// One training run's settings, typed; stored in the run's `state.json` with every named value as
/// its name (`"ggcnn"`, `"cornell:DIR"`), so runs resume and export from that file alone.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FitConfig {
    /// Where the samples come from.
    pub datasets: Vec<DatasetSpec>,
    /// GG-CNN or MTG-CNN.
    pub arch: ArchKind,
    /// MTG-CNN's auxiliary task.
    pub aux: Option<AuxTask>,
    /// The paper's L or L_p.
    pub loss: LossKind,
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Adam's learning rate (the first epoch's, under a decaying schedule).
    pub learning_rate: f64,
    /// How the learning rate changes over the epochs (runs before it existed were constant).
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Square network input, pixels.
    pub input_size: usize,
    /// Which cross-validation fold is held out.
    pub fold: usize,
    /// Object-wise or image-wise folds.
    pub split: SplitMode,
    /// Seed of the split, initialisation, order and augmentation.
    pub seed: u64,
    /// At most this many samples.
    pub max_samples: Option<usize>,
    /// Random views during training.
    pub augment: bool,
    /// The random zoom's range `(min, max)` when augmenting (runs before it existed used the
    /// paper's 1–1.25).
    #[serde(default = "default_zoom")]
    pub zoom: (f32, f32),
    /// Keep the auxiliary output in the exported model.
    pub export_aux: bool,
    /// Fine-tuning: the ONNX model whose weights a fresh run starts from (instead of PyTorch's
    /// random initialisation).
    #[serde(default)]
    pub init_from: Option<PathBuf>,
    /// Decay of an exponential moving average of the weights, updated after every step; when
    /// set, the average is what is validated, kept as the best checkpoint and exported (runs
    /// before it existed had none).
    #[serde(default)]
    pub ema: Option<f64>,
    /// Weight of the width term in the training loss (the paper's: 1; runs before it existed
    /// used 1).
    #[serde(default = "default_width_weight")]
    pub width_weight: f64,
    /// Train only this grasp output's 1×1 head (`q`, `cos`, `sin` or `width`), every other
    /// weight frozen: re-fits one output of a fine-tuned model without moving the others.
    #[serde(default)]
    pub head_only: Option<String>,
    /// Validate on the validation images rescaled about their centre by each of these factors
    /// (see [`crate::augment::rescaled_about_centre`]), and keep the epoch with the most
    /// successes over all of them: selects for a model that holds across camera heights.
    /// Runs before it existed validated at 1 only.
    #[serde(default = "default_val_rescale")]
    pub val_rescale: Vec<f64>,
}

fn default_val_rescale() -> Vec<f64> {
    vec![1.0]
}

fn default_width_weight() -> f64 {
    1.0
}

fn default_zoom() -> (f32, f32) {
    crate::augment::DEFAULT_ZOOM
}

/// The learning rate over a run's epochs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// The same rate every epoch (GG-CNN's and the paper's setting).
    #[default]
    Constant,
    /// Half a cosine from the rate down to 1 % of it at the last epoch: the later epochs refine
    /// instead of hopping between minima, so the last and best checkpoints agree more closely.
    Cosine,
}

impl LrSchedule {
    /// The rate of epoch `epoch` (from 1) of `epochs`, starting at `base`.
    pub fn rate(self, base: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Cosine => {
                let span = epochs.saturating_sub(1).max(1) as f64;
                let t = (epoch.saturating_sub(1) as f64 / span).min(1.0);
                let floor = 0.01 * base;
                floor + (base - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

impl FitConfig {
    /// The network this run trains.
    pub fn architecture(&self) -> Result<Architecture, ArchError> {
        Architecture::new(self.arch, self.aux)
    }

    /// The training views' augmentation: none, or the default one with this run's zoom range.
    pub fn augmentation(&self) -> Augment {
        if self.augment {
            Augment::with_zoom(self.zoom)
        } else {
            Augment::NONE
        }
    }
}

/// What one epoch did (a row of metrics.csv).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean total loss.
    pub train_loss: f64,
    /// Mean Q loss.
    pub loss_q: f64,
    /// Mean cos 2Φ loss.
    pub loss_cos: f64,
    /// Mean sin 2Φ loss.
    pub loss_sin: f64,
    /// Mean width loss.
    pub loss_width: f64,
    /// Mean auxiliary loss.
    pub loss_aux: f64,
    /// Fraction of training samples that had a target for the auxiliary loss.
    pub aux_target_fraction: f64,
    /// Validation success, percent.
    pub val_success: f64,
    /// Validation images.
    pub val_images: usize,
    /// Wall time of the epoch, validation included.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
}

/// The last epoch's weight average in a run directory (`--ema`); `last.ot` holds the trained
/// weights, which the optimiser continues from.
const LAST_AVERAGE: &str = "last-ema.ot";

/// An exponential moving average of a network's weights, `average ← decay·average + (1 − decay)·
/// trained` after every step, held in a second store of the same network so that it validates,
/// saves and exports like the trained one.
pub struct WeightAverage {
    decay: f64,
    /// (average, trained) variable pairs, sharing storage with the two stores.
    pairs: Vec<(Tensor, Tensor)>,
}

impl WeightAverage {
    /// Pairs `average`'s variables with `trained`'s by name and starts the average at the
    /// trained weights. Both stores must hold the same network.
    pub fn new(decay: f64, average: &mut tch::nn::VarStore, trained: &tch::nn::VarStore) -> Result<Self> {
        average.copy(trained).context("the weight average's network differs from the trained one")?;
        average.freeze();
        let trained = trained.variables();
        let mut pairs = Vec::with_capacity(trained.len());
        for (name, a) in average.variables() {
            let w = trained.get(&name).with_context(|| format!("the trained network has no variable {name}"))?;
            pairs.push((a, w.shallow_clone()));
        }
        Ok(WeightAverage { decay, pairs })
    }

    /// One step of the average towards the current trained weights.
    pub fn update(&mut self) {
        let weight = 1.0 - self.decay;
        tch::no_grad(|| {
            for (a, w) in &mut self.pairs {
                let _ = a.lerp_(w, weight);
            }
        });
    }
}

/// Freezes every variable of a network except the 1×1 head of grasp output `output`; returns the
/// number of weights left to train.
pub fn freeze_all_but_head(vs: &tch::nn::VarStore, output: &str) -> Result<usize> {
    if !grasp_models::layout::GRASP_OUTPUTS.contains(&output) {
        bail!("--head-only {output}: not a grasp output (one of {:?})", grasp_models::layout::GRASP_OUTPUTS);
    }
    let prefix = format!("grasp.head_{output}.");
    let mut trained = 0;
    for (name, t) in vs.variables() {
        if name.starts_with(&prefix) {
            trained += t.numel();
        } else {
            let _ = t.set_requires_grad(false); // shares the variable's storage and flag
        }
    }
    if trained == 0 {
        bail!("the network has no variables named {prefix}*");
    }
    Ok(trained)
}

/// One training step's update: the optimiser's, then the weight average's (with `--ema`).
struct OptimiserStep<'a> {
    opt: &'a mut tch::nn::Optimizer,
    average: Option<&'a mut WeightAverage>,
}

impl OptimiserStep<'_> {
    fn apply(&mut self, loss: &Tensor) {
        self.opt.backward_step(loss);
        if let Some(a) = self.average.as_deref_mut() {
            a.update();
        }
    }
}

/// A run directory's `state.json`: its settings and progress, for resume and export.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunState {
    config: FitConfig,
    epochs_done: usize,
    best_epoch: usize,
    best_val_success: f64,
    history: Vec<EpochMetrics>,
}

/// Decoded samples by index, cached while under `CACHE_BYTES` (private).
pub struct SampleStore {
    /// Every sample of the datasets, in a fixed order.
    pub refs: Vec<SampleRef>,
    cache: HashMap<usize, Sample>,
    cached_bytes: usize,
    scratch: Option<Sample>,
}

impl SampleStore {
    /// Scans the datasets; keeps whole objects up to `max_samples`.
    pub fn open(specs: &[DatasetSpec], max_samples: Option<usize>, seed: u64) -> Result<Self> {
        let mut refs = vec![];
        for (dataset, s) in specs.iter().enumerate() {
            let found = scan(s)?;
            log::info!("{} {}: {} samples", s.kind, s.path.display(), found.len());
            refs.extend(found.into_iter().map(|r| SampleRef { dataset, ..r }));
        }
        if let Some(n) = max_samples.filter(|&n| n < refs.len()) {
            // Keep whole objects, chosen at random but reproducibly, so the split stays object-wise.
            // Count views per object once (this was a scan of all samples per object: quadratic
            // on the full Jacquard set). BTreeMap keys come sorted, as before the shuffle.
            let key = |r: &SampleRef| format!("{}:{}", r.kind, r.object_id);
            let mut views: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
            for r in &refs {
                *views.entry(key(r)).or_default() += 1;
            }
            let mut objects: Vec<String> = views.keys().cloned().collect();
            objects.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed));
            let mut keep = std::collections::HashSet::new();
            let mut count = 0;
            for o in objects {
                if count >= n {
                    break;
                }
                count += views[&o];
                keep.insert(o);
            }
            refs.retain(|r| keep.contains(&key(r)));
        }
        if refs.is_empty() {
            bail!("no samples to train on");
        }
        Ok(SampleStore { refs, cache: HashMap::new(), cached_bytes: 0, scratch: None })
    }

    /// Sample `i`, decoded (from the cache when it is there).
    pub fn get(&mut self, i: usize) -> Result<&Sample, DatasetError> {
        if self.cache.contains_key(&i) {
            return Ok(&self.cache[&i]);
        }
        let s = load(&self.refs[i])?;
        let bytes = s.rgb.len() + 4 * (s.depth.as_ref().map_or(0, Vec::len) + s.mask.as_ref().map_or(0, Vec::len));
        if self.cached_bytes + bytes <= CACHE_BYTES {
            self.cached_bytes += bytes;
            return Ok(self.cache.entry(i).or_insert(s));
        }
        Ok(self.scratch.insert(s))
    }
}

/// Stacks prepared views into a batch on `device`.
pub fn batch_tensors(items: &[&Prepared], size: usize, device: Device) -> (Tensor, Targets) {
    let n = items.len() as i64;
    let s = size as i64;
    let cat =
        |f: &dyn Fn(&Prepared) -> &[f32]| -> Vec<f32> { items.iter().flat_map(|p| f(p).iter().copied()).collect() };
    let map = |v: Vec<f32>| Tensor::from_slice(&v).reshape([n, 1, s, s]).to_device(device);
    let zeros = vec![0.0; size * size];
    let input = Tensor::from_slice(&cat(&|p| &p.input)).reshape([n, 3, s, s]).to_device(device);
    let targets = Targets {
        q: map(cat(&|p| &p.q)),
        cos: map(cat(&|p| &p.cos)),
        sin: map(cat(&|p| &p.sin)),
        width: map(cat(&|p| &p.width)),
        aux: map(items.iter().flat_map(|p| p.aux.as_ref().unwrap_or(&zeros).iter().copied()).collect()),
        aux_present: Tensor::from_slice(&items.iter().map(|p| p.aux.is_some() as i32 as f32).collect::<Vec<_>>())
            .to_device(device),
    };
    (input, targets)
}

/// Per-image outcome of an evaluation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageResult {
    /// The image file.
    pub image: String,
    /// Whether the top grasp hit a ground-truth rectangle.
    pub success: bool,
    /// The top grasp: x, y, angle, width, quality.
    pub grasp: Option<[f32; 5]>,
}

/// Success rate of `net` on prepared (unaugmented) views, decoding exactly as the edge binary.
pub fn evaluate_net(
    net: &GraspNet,
    views: &[(String, Prepared)],
    info: &ModelInfo,
    device: Device,
    batch: usize,
) -> Vec<ImageResult> {
    let size = info.input_size;
    let mut decoder = Decoder::new(info.decode.clone());
    let mut maps = GraspMaps::zeros(size, false);
    let mut grasps = vec![];
    let mut out = vec![];
    let _guard = tch::no_grad_guard();
    for chunk in views.chunks(batch.max(1)) {
        let items: Vec<&Prepared> = chunk.iter().map(|(_, p)| p).collect();
        let (input, _) = batch_tensors(&items, size, device);
        let o = net.forward(&input);
        let (q, c, s, w) = (batch_to_host(&o.q), batch_to_host(&o.cos), batch_to_host(&o.sin), batch_to_host(&o.width));
        for (k, (name, p)) in chunk.iter().enumerate() {
            let r = k * size * size..(k + 1) * size * size;
            maps.q.copy_from_slice(&q[r.clone()]);
            maps.cos.copy_from_slice(&c[r.clone()]);
            maps.sin.copy_from_slice(&s[r.clone()]);
            maps.width.copy_from_slice(&w[r]);
            decoder.decode(&maps, 1, &mut grasps);
            let g = grasps.first();
            out.push(ImageResult {
                image: name.clone(),
                success: g.is_some_and(|g| grasp_succeeds(g, &p.rects, IouMode::Exact)),
                grasp: g.map(|g| [g.x, g.y, g.angle, g.width, g.quality]),
            });
        }
    }
    out
}

/// Percentage of successful images.
pub fn success_percent(results: &[ImageResult]) -> f64 {
    100.0 * results.iter().filter(|r| r.success).count() as f64 / results.len().max(1) as f64
}

/// What a finished run leaves behind.
pub struct FitOutcome {
    /// Every epoch's metrics.
    pub history: Vec<EpochMetrics>,
    /// The epoch of the best validation success.
    pub best_epoch: usize,
    /// That success, percent.
    pub best_val_success: f64,
    /// The split used.
    pub split: Split,
    /// The exported model.
    pub onnx: PathBuf,
}

/// Allocations up to this size stay on glibc's heap when freed instead of going back to the
/// kernel (see [`keep_large_allocations_on_the_heap`]).
pub const HEAP_ALLOCATION_LIMIT: usize = 1 << 30;

/// Makes glibc keep freed allocations up to [`HEAP_ALLOCATION_LIMIT`] for reuse. libtorch's CPU
/// training frees and re-allocates every activation and gradient each step; above glibc's mmap
/// threshold (its dynamic value is capped at 32 MiB, and one 16-channel map of a 300², batch-8
/// step is 46 MB) each is a fresh mapping whose pages fault in again: 19 M minor faults in one
/// 300-image 300² epoch, 0.3 M with this, 1.7× the images/s for the same weights and ~0.2–0.3 GB
/// more resident memory (BENCHMARKS.md). Process-wide: `grasp-train` calls it first thing. A
/// `MALLOC_MMAP_THRESHOLD_` set by the user wins. Returns whether the setting is in force (false
/// off glibc).
pub fn keep_large_allocations_on_the_heap() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
            return true;
        }
        let limit = HEAP_ALLOCATION_LIMIT as libc::c_int;
        // Both: below the mmap threshold a block comes from the heap, and the heap's free top is
        // only given back above the trim threshold (else a freed 46 MB top block is trimmed and
        // faults in again on the next step).
        // SAFETY: mallopt only changes allocator parameters; glibc serialises it with malloc.
        let set = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, limit) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, limit) == 1
        };
        if !set {
            log::warn!(
                "glibc refused mmap and trim thresholds of 1 GiB: CPU training may spend much of its time in page faults"
            );
        }
        set
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

/// Batches prepared ahead of the training step by the prefetch thread.
pub const PREFETCH_BATCHES: usize = 2;

/// One training run.
pub struct Fitter {
    /// Its settings.
    pub config: FitConfig,
    /// The run directory.
    pub out: PathBuf,
    /// CPU or CUDA.
    pub device: Device,
    /// Continue from the run directory's last checkpoint.
    pub resume: bool,
    /// Show a progress bar (off in tests and nested runs).
    pub progress: bool,
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Per-epoch running sums of the loss terms, each weighted by its batch's size.
#[derive(Debug, Default, Clone, Copy)]
struct LossSums {
    total: f64,
    q: f64,
    cos: f64,
    sin: f64,
    width: f64,
    aux: f64,
    /// Training samples that had an auxiliary target.
    aux_targets: usize,
    /// Training samples seen.
    seen: usize,
}

impl LossSums {
    fn add(&mut self, l: &crate::loss::LossParts, total: f64, n: usize) {
        let w = n as f64;
        self.total += total * w;
        self.q += l.q * w;
        self.cos += l.cos * w;
        self.sin += l.sin * w;
        self.width += l.width * w;
        self.aux += l.aux * w;
        self.seen += n;
    }

    fn mean(&self, sum: f64) -> f64 {
        sum / self.seen.max(1) as f64
    }
}

/// What a run trains on: the model's contract, its samples and their split.
struct RunData {
    info: ModelInfo,
    store: SampleStore,
    split: Split,
}

impl Fitter {
    /// Trains for the configured epochs (continuing a run with `resume`), validating, saving
    /// checkpoints and metrics after each, then exports the best weights.
    pub fn run(&self) -> Result<FitOutcome> {
        let cfg = &self.config;
        let arch = cfg.architecture()?;
        let RunData { info, mut store, split } = self.open_data(&arch)?;
        tch::manual_seed(cfg.seed as i64);
        let mut vs = tch::nn::VarStore::new(self.device);
        let net = GraspNet::new(&vs, &arch);
        let mut state = self.initial_state(&mut vs)?;
        if let (Some(model), 0) = (&cfg.init_from, state.epochs_done) {
            load_onnx_weights(&mut vs, model, &arch)?;
            log::info!("starting from the weights of {}", model.display());
        }
        if let Some(output) = &cfg.head_only {
            let trained = freeze_all_but_head(&vs, output)?;
            log::info!("training only the {output} head ({trained} weights); everything else is frozen");
        }
        let mut opt = tch::nn::Adam::default().build(&vs, cfg.learning_rate)?;
        // With --ema, a second copy of the network holds the average; it is what is validated,
        // kept as best and exported.
        let mut averaged = match cfg.ema {
            Some(decay) => {
                let mut avs = tch::nn::VarStore::new(self.device);
                let anet = GraspNet::new(&avs, &arch);
                let average = WeightAverage::new(decay, &mut avs, &vs)?;
                let last = self.out.join(LAST_AVERAGE);
                if self.resume && last.exists() {
                    avs.load(&last).with_context(|| format!("loading the weight average {}", last.display()))?;
                } else if self.resume && state.epochs_done > 0 {
                    log::warn!("{} has no weight average yet: it starts at the last weights", self.out.display());
                }
                Some((avs, anet, average))
            }
            None => None,
        };
        let val_views = rescaled_center_views(&mut store, &split.val, &info, &cfg.val_rescale)?;
        if cfg.val_rescale != [1.0] {
            log::info!(
                "validating {} views: {} images at scales {:?}",
                val_views.len(),
                split.val.len(),
                cfg.val_rescale
            );
        }
        for epoch in state.epochs_done + 1..=cfg.epochs {
            let started = Instant::now();
            opt.set_lr(cfg.lr_schedule.rate(cfg.learning_rate, epoch, cfg.epochs));
            let step = OptimiserStep { opt: &mut opt, average: averaged.as_mut().map(|(_, _, a)| a) };
            let sums = self.train_epoch(epoch, &net, step, &mut store, &split.train, &info)?;
            let train_seconds = started.elapsed().as_secs_f64();
            let (validated_vs, validated_net) = averaged.as_ref().map_or((&vs, &net), |(avs, anet, _)| (avs, anet));
            // Validation decodes as the paper evaluates: the argmax of smoothed Q.
            let results = evaluate_net(validated_net, &val_views, &argmax_decoding(&info), self.device, cfg.batch_size);
            let m = EpochMetrics {
                epoch,
                train_loss: sums.mean(sums.total),
                loss_q: sums.mean(sums.q),
                loss_cos: sums.mean(sums.cos),
                loss_sin: sums.mean(sums.sin),
                loss_width: sums.mean(sums.width),
                loss_aux: sums.mean(sums.aux),
                aux_target_fraction: if arch.aux_task().is_some() {
                    sums.aux_targets as f64 / sums.seen.max(1) as f64
                } else {
                    0.0
                },
                val_success: success_percent(&results),
                val_images: results.len(),
                seconds: started.elapsed().as_secs_f64(),
                images_per_second: sums.seen as f64 / train_seconds,
            };
            self.end_epoch(&vs, validated_vs, &mut state, m)?;
        }
        let onnx = export_run(&self.out, &self.out.join("model.onnx"), cfg.export_aux)?;
        Ok(FitOutcome {
            history: state.history,
            best_epoch: state.best_epoch,
            best_val_success: state.best_val_success,
            split,
            onnx,
        })
    }

    /// Opens the datasets and splits them; refuses a split without training or validation images.
    fn open_data(&self, arch: &Architecture) -> Result<RunData> {
        let cfg = &self.config;
        Architecture::check_input_size(cfg.input_size)?;
        std::fs::create_dir_all(&self.out).with_context(|| format!("creating {}", self.out.display()))?;
        let store = SampleStore::open(&cfg.datasets, cfg.max_samples, cfg.seed)?;
        let split = split(&store.refs, cfg.fold, cfg.split, cfg.seed);
        if split.train.is_empty() || split.val.is_empty() {
            bail!("{} samples are too few to split into training and validation (fold {})", store.refs.len(), cfg.fold);
        }
        log::info!(
            "split (fold {}, {}): {} train, {} val, {} test",
            cfg.fold,
            cfg.split,
            split.train.len(),
            split.val.len(),
            split.test.len()
        );
        Ok(RunData { info: ModelInfo::new(arch.kind, arch.aux_task(), cfg.input_size), store, split })
    }

    /// A fresh run's state, or (with `resume`) the run directory's, with its last weights loaded.
    fn initial_state(&self, vs: &mut tch::nn::VarStore) -> Result<RunState> {
        let cfg = &self.config;
        let state_path = self.out.join("state.json");
        if !(self.resume && state_path.exists()) {
            return Ok(RunState {
                config: cfg.clone(),
                epochs_done: 0,
                best_epoch: 0,
                best_val_success: -1.0,
                history: vec![],
            });
        }
        let s: RunState = serde_json::from_str(&std::fs::read_to_string(&state_path)?)
            .with_context(|| format!("reading {}", state_path.display()))?;
        let last = self.out.join("last.ot");
        vs.load(&last).with_context(|| format!("loading {}", last.display()))?;
        log::info!(
            "resuming after epoch {} (best {:.1}% at epoch {}); Adam's moments restart from zero",
            s.epochs_done,
            s.best_val_success,
            s.best_epoch
        );
        Ok(RunState { config: cfg.clone(), ..s })
    }

    /// One pass over the training images in a seeded random order, in batches of augmented
    /// views. A non-finite loss stops the run; the last checkpoint is the previous epoch's.
    fn train_epoch(
        &self,
        epoch: usize,
        net: &GraspNet,
        mut step: OptimiserStep,
        store: &mut SampleStore,
        train: &[usize],
        info: &ModelInfo,
    ) -> Result<LossSums> {
        let cfg = &self.config;
        let started = Instant::now();
        let augment = cfg.augmentation();
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_mul(1000).wrapping_add(epoch as u64));
        let mut order = train.to_vec();
        order.shuffle(&mut rng);
        let bar = if self.progress {
            indicatif::ProgressBar::new(train.len().div_ceil(cfg.batch_size) as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} batches {msg} ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{}", cfg.epochs));
        let mut sums = LossSums::default();
        // Loading, decoding, augmenting and ground-truth maps run on a prefetch thread, a bounded
        // queue ahead of the training step (same order and random draws as in one thread, so
        // runs stay reproducible).
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Prepared>, DatasetError>>(PREFETCH_BATCHES);
        let batch_size = cfg.batch_size;
        let input_size = cfg.input_size;
        std::thread::scope(|scope| -> Result<LossSums> {
            scope.spawn(move || {
                for chunk in order.chunks(batch_size) {
                    let mut items = Vec::with_capacity(chunk.len());
                    for &i in chunk {
                        match store.get(i) {
                            Ok(s) => {
                                let t = augment.random_view(&mut rng, s.width, s.height, input_size);
                                items.push(prepare(s, &t, info, info.aux_task));
                            }
                            Err(e) => {
                                let _ = tx.send(Err(e));
                                return;
                            }
                        }
                    }
                    // The trainer stopped (an error): nothing more to prepare.
                    if tx.send(Ok(items)).is_err() {
                        return;
                    }
                }
            });
            for items in rx {
                let items = items?;
                sums.aux_targets += items.iter().filter(|p| p.aux.is_some()).count();
                let refs: Vec<&Prepared> = items.iter().collect();
                let (input, targets) = batch_tensors(&refs, cfg.input_size, self.device);
                let l = loss_with_width_weight(cfg.loss, cfg.width_weight, &net.forward(&input), &targets);
                let total = l.total.double_value(&[]);
                if !total.is_finite() {
                    bail!("the loss became {total} at epoch {epoch} (q {} cos {} sin {} width {} aux {}); the last good checkpoint is {}", l.q, l.cos, l.sin, l.width, l.aux, self.out.join("last.ot").display());
                }
                step.apply(&l.total);
                sums.add(&l, total, items.len());
                let rate = sums.seen as f64 / started.elapsed().as_secs_f64();
                bar.set_message(format!("loss {:.4} {rate:.1} img/s", sums.mean(sums.total)));
                bar.inc(1);
            }
            bar.finish_and_clear();
            Ok(sums)
        })
    }

    /// Logs an epoch, saves the last (and a new best) checkpoint, the run state and the metrics.
    /// `validated` is the store that was validated: the trained one, or its weight average.
    fn end_epoch(
        &self,
        vs: &tch::nn::VarStore,
        validated: &tch::nn::VarStore,
        state: &mut RunState,
        m: EpochMetrics,
    ) -> Result<()> {
        log::info!(
            "epoch {}/{}: loss {:.4} (q {:.4} cos {:.4} sin {:.4} width {:.4} aux {:.4}, aux targets {:.0}%), val success {:.1}% of {}, {:.1} img/s",
            m.epoch, self.config.epochs, m.train_loss, m.loss_q, m.loss_cos, m.loss_sin, m.loss_width, m.loss_aux, 100.0 * m.aux_target_fraction, m.val_success, m.val_images, m.images_per_second
        );
        vs.save(self.out.join("last.ot"))?;
        if self.config.ema.is_some() {
            validated.save(self.out.join(LAST_AVERAGE))?;
        }
        if m.val_success > state.best_val_success {
            state.best_val_success = m.val_success;
            state.best_epoch = m.epoch;
            validated.save(self.out.join("best.ot"))?;
        }
        state.epochs_done = m.epoch;
        state.history.push(m);
        std::fs::write(self.out.join("state.json"), serde_json::to_string_pretty(&state)?)?;
        self.write_metrics(&state.history)
    }

    fn write_metrics(&self, history: &[EpochMetrics]) -> Result<()> {
        std::fs::write(self.out.join("metrics.json"), serde_json::to_string_pretty(history)?)?;
        let mut csv = String::from("epoch,train_loss,loss_q,loss_cos,loss_sin,loss_width,loss_aux,aux_target_fraction,val_success,val_images,seconds,images_per_second\n");
        for m in history {
            csv += &format!(
                "{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.3},{:.2},{},{:.1},{:.2}\n",
                m.epoch,
                m.train_loss,
                m.loss_q,
                m.loss_cos,
                m.loss_sin,
                m.loss_width,
                m.loss_aux,
                m.aux_target_fraction,
                m.val_success,
                m.val_images,
                m.seconds,
                m.images_per_second
            );
        }
        std::fs::write(self.out.join("metrics.csv"), csv)?;
        let series = vec![(
            format!("{} {} loss", self.config.arch, self.config.loss),
            history.iter().map(|m| (m.epoch, m.val_success)).collect(),
        )];
        crate::report::plot_success(&self.out.join("val_success.png"), "Validation success per epoch", &series)
    }
}

/// `info` with the paper's evaluation decoding: the single argmax of smoothed Q, whatever its value.
pub fn argmax_decoding(info: &ModelInfo) -> ModelInfo {
    ModelInfo { decode: grasp_models::DecodeParams { mode: PeakMode::Argmax, ..info.decode.clone() }, ..info.clone() }
}

/// Test success of trained weights on a split's test images, percent, two ways.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestSuccess {
    /// The paper's way: the argmax of smoothed Q is the grasp.
    pub argmax: f64,
    /// The runtime's way: the best local maximum with Q ≥ the model's peak threshold (an image
    /// without one counts as a failure).
    pub thresholded: f64,
}

/// Evaluates trained weights on a split's test images (used by cross-validation).
pub fn test_success(
    store: &mut SampleStore,
    indices: &[usize],
    net: &GraspNet,
    info: &ModelInfo,
    device: Device,
) -> Result<TestSuccess> {
    let views = center_views(store, indices, info)?;
    Ok(TestSuccess {
        argmax: success_percent(&evaluate_net(net, &views, &argmax_decoding(info), device, 8)),
        thresholded: success_percent(&evaluate_net(net, &views, info, device, 8)),
    })
}

/// Evaluation views: the plain centre crop the robot sees, no augmentation, no label-dependent crop.
pub fn center_views(store: &mut SampleStore, indices: &[usize], info: &ModelInfo) -> Result<Vec<(String, Prepared)>> {
    rescaled_center_views(store, indices, info, &[1.0])
}

/// [`center_views`] of the images rescaled about their centre by each factor in turn (1: the
/// image itself, not resampled twice), named `image@x<factor>` when not 1.
pub fn rescaled_center_views(
    store: &mut SampleStore,
    indices: &[usize],
    info: &ModelInfo,
    factors: &[f64],
) -> Result<Vec<(String, Prepared)>> {
    let mut views = vec![];
    for &f in factors {
        for &i in indices {
            let image = store.refs[i].rgb.display().to_string();
            let stored = store.get(i)?;
            let rescaled = (f != 1.0).then(|| crate::augment::rescaled_about_centre(stored, f as f32));
            let s = rescaled.as_ref().unwrap_or(stored);
            let t = grasp_models::preprocess::ImageTransform::center_crop(s.width, s.height, info.input_size);
            let name = if rescaled.is_some() { format!("{image}@x{f}") } else { image };
            views.push((name, prepare(s, &t, info, None)));
        }
    }
    Ok(views)
}

/// Exports a run directory's best checkpoint (or its last, before any validation) as an ONNX grasp
/// model whose provenance records the run's configuration and results. Works on a run that is
/// still training or was interrupted.
pub fn export_run(run: &Path, out: &Path, include_aux: bool) -> Result<PathBuf> {
    export_run_checkpoint(run, out, include_aux, false)
}

/// [`export_run`], or with `last` the run's last checkpoint instead of its best (the end of a
/// decaying learning-rate schedule); the provenance names the checkpoint and its epoch.
pub fn export_run_checkpoint(run: &Path, out: &Path, include_aux: bool, last: bool) -> Result<PathBuf> {
    let state_path = run.join("state.json");
    let state: RunState = serde_json::from_str(
        &std::fs::read_to_string(&state_path).with_context(|| format!("reading {}", state_path.display()))?,
    )
    .with_context(|| format!("parsing {}", state_path.display()))?;
    let cfg = &state.config;
    let arch = cfg.architecture()?;
    let mut vs = tch::nn::VarStore::new(Device::Cpu);
    let _net = GraspNet::new(&vs, &arch);
    let use_last = last || !run.join("best.ot").exists();
    // A run with a weight average exports the average, at its end too.
    let last_file = if cfg.ema.is_some() { LAST_AVERAGE } else { "last.ot" };
    let weights = if use_last { run.join(last_file) } else { run.join("best.ot") };
    let (checkpoint, epoch) = if use_last { ("last", state.epochs_done) } else { ("best", state.best_epoch) };
    vs.load(&weights).with_context(|| format!("loading {}", weights.display()))?;
    let mut info = ModelInfo::new(arch.kind, arch.aux_task(), cfg.input_size);
    if let Some(scale) = trained_scale(cfg)? {
        info.mm_per_px = Some(scale.mm_per_px as f32);
        if scale.table_view {
            info.image_fit = grasp_models::contract::ImageFit::TableView;
        }
        log::info!(
            "the model sees the table at {:.4} mm/px (±{:.0} % by the zoom augmentation){}",
            scale.mm_per_px,
            scale.jitter * 100.0,
            if scale.table_view { ", in the table view" } else { "" }
        );
    }
    let split = SampleStore::open(&cfg.datasets, cfg.max_samples, cfg.seed)
        .map(|s| split(&s.refs, cfg.fold, cfg.split, cfg.seed))
        .ok();
    info.provenance = serde_json::json!({
        "tool": format!("grasp-train {}", env!("CARGO_PKG_VERSION")),
        "commit": git_commit(),
        "date": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "config": cfg,
        "epochs_done": state.epochs_done,
        "checkpoint": checkpoint,
        "checkpoint_epoch": epoch,
        "best_epoch": state.best_epoch,
        "val_success_percent": state.best_val_success,
        "train_samples": split.as_ref().map(|s| s.train.len()),
        "val_samples": split.as_ref().map(|s| s.val.len()),
        "test_samples": split.as_ref().map(|s| s.test.len()),
    })
    .to_string();
    let bytes = grasp_models::onnx::export(
        &arch,
        &named_weights(&vs)?,
        &info,
        &grasp_models::onnx::ExportOptions::with_aux(include_aux),
    )?;
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    log::info!("{checkpoint} checkpoint (epoch {epoch} of {}) exported to {}", state.epochs_done, out.display());
    Ok(out.to_path_buf())
}

/// The table scale a run's model was trained at, from its datasets' `synth.toml`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainedScale {
    /// Table mm per input pixel at the centre of the zoom range.
    pub mm_per_px: f64,
    /// Half the zoom range around it, as a fraction.
    pub jitter: f64,
    /// Every dataset is a table-view set: the model expects the table view.
    pub table_view: bool,
}

/// The scale a run's model sees, when every dataset declares one and they agree within 1 %:
/// data scale × image side / input side, divided by the geometric centre of the zoom range
/// √(min·max), which then spans ±(√(max/min) − 1). None when a dataset has no
/// declared scale (Cornell, Jacquard, posed sets) or they differ.
pub fn trained_scale(cfg: &FitConfig) -> Result<Option<TrainedScale>> {
    let mut scales = vec![];
    let mut table_view = true;
    for d in &cfg.datasets {
        let info = crate::synth::SynthInfo::read(&d.path)?;
        match info.as_ref().and_then(|i| i.mm_per_px.map(|m| (m, i))) {
            Some((m, i)) => {
                scales.push(m * i.size as f64 / cfg.input_size as f64);
                table_view &= i.kind == crate::synth::SynthKind::TableView;
            }
            None => return Ok(None),
        }
    }
    let Some(&first) = scales.first() else { return Ok(None) };
    if scales.iter().any(|m| (m / first - 1.0).abs() > 0.01) {
        log::warn!("the datasets have different scales ({scales:?} mm/px at the input): the model declares none");
        return Ok(None);
    }
    let a = cfg.augmentation();
    let (centre, half_range) = (a.zoom_centre() as f64, ((a.max_zoom / a.min_zoom) as f64).sqrt());
    Ok(Some(TrainedScale { mm_per_px: first / centre, jitter: half_range - 1.0, table_view }))
}

/// Copies an exported model's weights into `vs` (a network of `arch`): fine-tuning. A file
/// without an auxiliary branch (exported without it, or a GG-CNN) can start an MTG-CNN: its
/// shared and grasp layers are copied and the auxiliary branch keeps its random initialisation
/// (a warning says so). A weight missing from the file's grasp network, or of another shape, is
/// refused by name.
pub fn load_onnx_weights(vs: &mut tch::nn::VarStore, model: &Path, arch: &Architecture) -> Result<()> {
    let file = grasp_models::GraspModelFile::read(model)?;
    // Only a file that has no auxiliary output falls back to its grasp network; a file with one
    // must match the network whole (an auxiliary branch of another shape is an error, not random).
    let aux_random = arch.aux.is_some() && !file.output_names().iter().any(|o| o == grasp_models::layout::AUX_OUTPUT);
    let read_as = if aux_random { Architecture { aux: None, ..arch.clone() } } else { arch.clone() };
    let weights = grasp_models::onnx::NamedWeights::from_model(&file.proto, &read_as)
        .with_context(|| format!("{} cannot start a {} network", model.display(), arch.kind))?;
    for (name, mut var) in vs.variables() {
        let Some(w) = weights.0.get(&name) else {
            if aux_random {
                continue;
            }
            bail!("{}: no weight `{name}`", model.display());
        };
        let shape: Vec<i64> = w.shape.iter().map(|&d| d as i64).collect();
        if shape != var.size() {
            bail!("{}: weight `{name}` is {:?}, the network's is {:?}", model.display(), w.shape, var.size());
        }
        let t = tch::Tensor::from_slice(&w.data).reshape(&shape).to_device(var.device());
        tch::no_grad(|| var.copy_(&t));
    }
    if aux_random {
        log::warn!(
            "{} has no auxiliary branch (exported without it): the auxiliary branch starts from random weights",
            model.display()
        );
    }
    Ok(())
}

/// Loads the weights of a finished run into a fresh network.
pub fn load_run(dir: &Path, arch: &Architecture, device: Device) -> Result<(tch::nn::VarStore, GraspNet)> {
    let mut vs = tch::nn::VarStore::new(device);
    let net = GraspNet::new(&vs, arch);
    vs.load(dir.join("best.ot")).with_context(|| format!("loading {}", dir.join("best.ot").display()))?;
    Ok((vs, net))
}

/// A batch tensor's values on the host, as f32.
pub fn batch_to_host(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous().flatten(0, -1))
        .expect("float tensor")
}

#[cfg(test)]
mod tests {
    use super::{freeze_all_but_head, named_weights, GraspNet, LrSchedule, WeightAverage};
    use grasp_models::arch::{ArchKind, Architecture};
    use tch::Tensor;

    #[test]
    fn fine_tuning_starts_from_the_models_weights_and_names_a_missing_one() {
        use grasp_models::onnx::{export, ExportOptions, NamedWeights};
        use grasp_models::{Architecture, AuxTask};
        use prost::Message;
        let arch = Architecture::ggcnn();
        let weights = NamedWeights::random(&arch, 3);
        let info = grasp_models::contract::ModelInfo::new(arch.kind, None, 32);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gg.onnx");
        let bytes = export(&arch, &weights, &info, &ExportOptions::with_aux(false)).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let mut vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _net = crate::net::GraspNet::new(&vs, &arch);
        assert_ne!(crate::net::named_weights(&vs).unwrap(), weights, "a fresh network is random");
        super::load_onnx_weights(&mut vs, &path, &arch).unwrap();
        assert_eq!(crate::net::named_weights(&vs).unwrap(), weights);
        // An MTG-CNN starts from the GG-CNN file: every shared and grasp weight copied, the
        // auxiliary branch left as initialised.
        let mtg = Architecture::mtgcnn(AuxTask::Depth);
        let mut vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _net = crate::net::GraspNet::new(&vs, &mtg);
        let before = crate::net::named_weights(&vs).unwrap();
        super::load_onnx_weights(&mut vs, &path, &mtg).unwrap();
        let after = crate::net::named_weights(&vs).unwrap();
        for (name, w) in &after.0 {
            match weights.0.get(name) {
                Some(src) => assert_eq!(w, src, "{name}"),
                None => assert!(name.contains("aux") && w == &before.0[name], "{name}"),
            }
        }
        // `bytes` without its first initializer whose name `drop` picks, written as `file`: loading
        // it into `arch` must fail, naming the file and the missing weight.
        let refused_without = |bytes: &[u8], drop: &dyn Fn(&str) -> bool, file: &str, arch: &Architecture| {
            let mut proto = grasp_models::GraspModelFile::from_bytes(bytes).unwrap().proto;
            let g = proto.graph.as_mut().unwrap();
            let at = g.initializer.iter().position(|t| drop(&t.name)).unwrap();
            let gone = g.initializer.remove(at).name;
            let broken = dir.path().join(file);
            std::fs::write(&broken, proto.encode_to_vec()).unwrap();
            let mut vs = tch::nn::VarStore::new(tch::Device::Cpu);
            let _net = crate::net::GraspNet::new(&vs, arch);
            let e = format!("{:#}", super::load_onnx_weights(&mut vs, &broken, arch).unwrap_err());
            assert!(e.contains(file) && e.contains(&gone), "{e}");
        };
        // A file that lacks one of the grasp network's weights is refused, naming it.
        refused_without(&bytes, &|_| true, "broken.onnx", &arch);
        // A file that has an auxiliary output must match the MTG-CNN whole: one missing auxiliary
        // weight is named, not replaced by random weights.
        let mtg_weights = NamedWeights::random(&mtg, 4);
        let mtg_info = grasp_models::contract::ModelInfo::new(mtg.kind, Some(AuxTask::Depth), 32);
        let mtg_bytes = export(&mtg, &mtg_weights, &mtg_info, &ExportOptions::with_aux(true)).unwrap();
        refused_without(&mtg_bytes, &|name| name.starts_with("aux."), "broken-aux.onnx", &mtg);
    }

    #[test]
    fn the_weight_average_starts_at_the_weights_and_moves_by_one_minus_the_decay() {
        let arch = Architecture::new(ArchKind::GgCnn, None).unwrap();
        let trained = tch::nn::VarStore::new(tch::Device::Cpu);
        let _net = GraspNet::new(&trained, &arch);
        let mut avs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _avg_net = GraspNet::new(&avs, &arch);
        let mut average = WeightAverage::new(0.75, &mut avs, &trained).unwrap();
        // A convolution's weight (the store's order is a hash map's), read at its first element.
        let (name, w) = trained.variables().into_iter().find(|(n, _)| n.ends_with(".weight")).unwrap();
        let first = |t: &Tensor| t.flatten(0, -1).double_value(&[0]);
        let start = first(&w);
        assert_eq!(first(&avs.variables()[&name]), start, "starts at the trained weights");
        // The trained weight moves to start + 1: each update closes a quarter of the gap.
        tch::no_grad(|| {
            let _ = w.shallow_clone().f_add_scalar_(1.0).unwrap();
        });
        average.update();
        let a = first(&avs.variables()[&name]);
        assert!((a - (start + 0.25)).abs() < 1e-6, "{a} vs {start}");
        average.update();
        let a = first(&avs.variables()[&name]);
        assert!((a - (start + 1.0 - 0.75 * 0.75)).abs() < 1e-6, "{a} vs {start}");
        assert!(!avs.variables()[&name].requires_grad(), "the average is not trained");
    }

    #[test]
    fn training_one_head_moves_only_that_head() {
        let arch = Architecture::new(ArchKind::GgCnn, None).unwrap();
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let net = GraspNet::new(&vs, &arch);
        assert_eq!(freeze_all_but_head(&vs, "width").unwrap(), 16 + 1, "a 1×1 head on 16 channels");
        assert!(freeze_all_but_head(&vs, "depth").is_err(), "not a grasp output");
        let before = named_weights(&vs).unwrap();
        let mut opt = tch::nn::OptimizerConfig::build(tch::nn::Adam::default(), &vs, 1e-2).unwrap();
        let x = Tensor::rand([2, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu));
        let out = net.forward(&x);
        opt.backward_step(&((out.width - 0.5).square().mean(tch::Kind::Float) + out.q.square().mean(tch::Kind::Float)));
        let after = named_weights(&vs).unwrap();
        for (name, w) in &before.0 {
            let moved = w.data != after.0[name].data;
            assert_eq!(moved, name.starts_with("grasp.head_width."), "{name}");
        }
    }

    #[test]
    fn cosine_schedule_starts_at_the_rate_and_ends_at_one_percent() {
        let s = LrSchedule::Cosine;
        assert!((s.rate(1e-3, 1, 20) - 1e-3).abs() < 1e-12);
        assert!((s.rate(1e-3, 20, 20) - 1e-5).abs() < 1e-12);
        // Halfway through, halfway between the two.
        assert!((s.rate(1e-3, 11, 21) - 0.505e-3).abs() < 1e-9);
        let rates: Vec<f64> = (1..=20).map(|e| s.rate(1e-3, e, 20)).collect();
        assert!(rates.windows(2).all(|w| w[1] < w[0]), "{rates:?}");
        // A one-epoch run and a run continued past its planned end keep a finite, positive rate.
        assert!((s.rate(1e-3, 1, 1) - 1e-3).abs() < 1e-12);
        assert!((s.rate(1e-3, 30, 20) - 1e-5).abs() < 1e-12);
    }

    #[test]
    fn constant_schedule_is_constant_and_old_run_states_read_as_constant() {
        assert_eq!(LrSchedule::Constant.rate(2e-4, 7, 10), 2e-4);
        let old: super::FitConfig = serde_json::from_str(
            r#"{"datasets":[],"arch":"ggcnn","aux":null,"loss":"plain","epochs":2,"batch_size":8,
            "learning_rate":0.001,"input_size":224,"fold":0,"split":"object","seed":0,
            "max_samples":null,"augment":true,"export_aux":false}"#,
        )
        .unwrap();
        assert_eq!(old.lr_schedule, LrSchedule::Constant);
        assert_eq!(old.val_rescale, [1.0], "old runs validated at the image's own scale");
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_heap_allocation_limit() {
        // A glibc that refuses these values fails here, instead of training 300² on the CPU
        // 1.7× slower with only a log line to say so.
        assert!(super::keep_large_allocations_on_the_heap());
    }

    #[test]
    fn rescaled_validation_views_repeat_every_image_per_factor_with_scaled_labels() {
        let dir = tempfile::tempdir().unwrap();
        crate::synth::write_dataset(dir.path(), 4, 5, 128, |_| {}).unwrap();
        let spec = format!("jacquard:{}", dir.path().display()).parse().unwrap();
        let mut store = super::SampleStore::open(&[spec], None, 0).unwrap();
        let info = grasp_models::contract::ModelInfo::new(ArchKind::GgCnn, None, 64);
        let all: Vec<usize> = (0..store.refs.len()).collect();
        let plain = super::center_views(&mut store, &all, &info).unwrap();
        let views = super::rescaled_center_views(&mut store, &all, &info, &[0.5, 1.0]).unwrap();
        let n = all.len();
        assert_eq!(views.len(), 2 * n);
        for k in 0..n {
            let (half, same) = (&views[k], &views[n + k]);
            assert_eq!(half.0, format!("{}@x0.5", plain[k].0));
            // Factor 1 is the plain centre view itself.
            assert_eq!((&same.0, &same.1.input, &same.1.rects), (&plain[k].0, &plain[k].1.input, &plain[k].1.rects));
            // Factor 0.5: every label half as long, half as far from the view's centre.
            assert_eq!(half.1.rects.len(), same.1.rects.len());
            for (h, s) in half.1.rects.iter().zip(&same.1.rects) {
                assert!((h.length - 0.5 * s.length).abs() < 1e-3, "{h:?} {s:?}");
                // The 64² view's centre is pixel 31.5 (pixel centres at integers).
                assert!((h.cx - 31.5 - 0.5 * (s.cx - 31.5)).abs() < 1e-3, "{h:?} {s:?}");
                assert!((h.cy - 31.5 - 0.5 * (s.cy - 31.5)).abs() < 1e-3, "{h:?} {s:?}");
                assert_eq!(h.angle, s.angle);
            }
        }
    }
}
