//! `grasp-train export`.

use super::*;

/// Export a run directory's best checkpoint as an ONNX grasp model (also while it trains), or
/// write an existing model file again in the exporter's current graph form (same network,
/// weights and metadata; the up-sampling in the form tract runs fastest).
///
/// Examples: grasp-train export --run runs/gg --out models/ggcnn-rgb.onnx
///           grasp-train export --model old.onnx --out new.onnx
#[derive(clap::Args)]
pub struct Args {
    /// Run directory of `grasp-train fit`.
    #[arg(long, required_unless_present = "model", conflicts_with = "model")]
    run: Option<PathBuf>,
    /// An exported model to write again (the auxiliary output is kept if it has one).
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    /// Keep the auxiliary output `aux` (with --run).
    #[arg(long, requires = "run")]
    with_aux: bool,
    /// Export the run's last checkpoint instead of its best by validation success (with --run;
    /// e.g. the end of a `--lr-schedule cosine` run).
    #[arg(long, requires = "run")]
    last: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let Args { run, model, out, with_aux, last } = args;
    let path = if let Some(run) = run {
        grasp_train::fit::export_run_checkpoint(&run, &out, with_aux, last)?
    } else {
        let model = model.context("give --run or --model")?;
        let file = GraspModelFile::read(&model)?;
        let bytes = grasp_models::onnx::reexport(&file, Default::default())
            .with_context(|| format!("re-exporting {}", model.display()))?;
        std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
        out
    };
    println!("wrote {}", path.display());
    Ok(())
}
