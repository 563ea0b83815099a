//! `grasp-train export`.

use super::*;

/// Export a run directory's best checkpoint as an ONNX grasp model (also while it trains).
///
/// Example: grasp-train export --run runs/gg --out models/ggcnn-rgb.onnx
#[derive(clap::Args)]
pub struct Args {
    /// Run directory of `grasp-train fit`.
    #[arg(long)]
    run: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Keep the auxiliary output `aux`.
    #[arg(long)]
    with_aux: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let Args { run, out, with_aux } = args;
    let path = grasp_train::fit::export_run(&run, &out, with_aux)?;
    println!("wrote {}", path.display());
    Ok(())
}
