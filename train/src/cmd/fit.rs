//! `grasp-train fit`.

use super::*;

/// Train a model; writes metrics.csv/json, val_success.png, last/best checkpoints and model.onnx
/// into the run directory.
///
/// Example: grasp-train fit --dataset cornell:../shared/data/cornell-crops --arch ggcnn --loss positional --out runs/gg
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    train: TrainArgs,
    #[arg(long, default_value = "ggcnn")]
    arch: ArchKind,
    /// Auxiliary task of `mtgcnn`: `depth` or `mask` (saliency). Samples without that target
    /// (e.g. Cornell has no depth) train the grasp outputs only.
    #[arg(long)]
    aux: Option<AuxTask>,
    /// `plain` (paper eq. 2), `positional` (eq. 3), `positional-bg` (eq. 3 plus a tenth of eq. 2's
    /// angle and width terms where no grasp is labelled; an ablation, RESULTS.md) or `plain-angle`
    /// (eq. 2's angle terms, eq. 3's width term; see the shipped model's card).
    #[arg(long, default_value = "positional")]
    loss: LossKind,
    /// Run directory.
    #[arg(long)]
    out: PathBuf,
    /// Continue from the run directory's last checkpoint (Adam's moments restart).
    #[arg(long)]
    resume: bool,
    /// Keep the auxiliary output in the exported ONNX.
    #[arg(long)]
    export_aux: bool,
    /// Fine-tune: start from this ONNX model's weights (same --arch) instead of a random
    /// initialisation; Adam's moments start at zero. E.g. the shipped model on new data or a
    /// wider --zoom.
    #[arg(long, value_name = "MODEL.onnx", conflicts_with = "resume")]
    init_from: Option<PathBuf>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let Args { train, arch, aux, loss, out, resume, export_aux, init_from } = args;
    if train.datasets.is_empty() {
        bail!("--dataset KIND:PATH is required (e.g. --dataset cornell:../shared/data/cornell-crops)");
    }
    let arch = Architecture::new(arch, aux)?;
    let aux = arch.aux_task();
    let cfg = FitConfig { init_from, ..fit_config(&train, arch.kind, aux, loss, export_aux) };
    let device = device(train.threads);
    let o = Fitter { config: cfg, out, device, resume, progress: true }.run()?;
    println!("best epoch {}: validation success {:.2}%; model: {}", o.best_epoch, o.best_val_success, o.onnx.display());
    Ok(())
}
