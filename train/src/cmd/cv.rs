//! `grasp-train cv`.

use super::*;

/// Cross-validation of the paper's Table I (six models × folds); prints a markdown table.
///
/// Example (toy scale): grasp-train cv --dataset jacquard:/tmp/synth --epochs 1 --input-size 64 --folds 2 --out runs/cv
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    train: TrainArgs,
    /// How many of the five folds to run.
    #[arg(long, default_value_t = FOLDS)]
    folds: usize,
    #[arg(long)]
    out: PathBuf,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let Args { train, folds, out } = args;
    if folds == 0 || folds > FOLDS {
        bail!("--folds must be 1..{FOLDS}");
    }
    let base = fit_config(&train, ArchKind::GgCnn, None, LossKind::Plain, false);
    let device = device(train.threads);
    let rows = grasp_train::cv::run(&base, folds, &out, device, true)?;
    println!("{}", grasp_train::cv::markdown(&rows));
    Ok(())
}
