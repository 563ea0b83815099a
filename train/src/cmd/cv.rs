//! `grasp-train cv`.

use super::*;
use grasp_train::cv::{collect, run_cell, write_table, Cell, CELL_RESULT};

/// Cross-validation of the paper's Table I (six models × folds); prints a markdown table.
///
/// The table is 6 × FOLDS independent cells. Without a cell option every cell runs here in turn
/// (finished cells are skipped and an interrupted one resumes from its checkpoint, so the same
/// command continues a run), then the table is written. To spread the cells over machines (one
/// GPU each, as `scripts/slurm-cv.sh` does with a Slurm job array):
///   --plan          lists the cells, their numbers and whether each is done;
///   --cell N        runs cell N of the plan (or --row R --fold K);
///   --collect       merges the finished cells into table.md, cv.json and the Fig. 6 plot, and
///                   fails naming the cells still missing.
///
/// Example (toy scale): grasp-train cv --dataset jacquard:/tmp/synth --epochs 1 --input-size 64 --folds 2 --out runs/cv
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    train: TrainArgs,
    /// How many of the five folds to run.
    #[arg(long, default_value_t = FOLDS)]
    folds: usize,
    /// Where the cells' run directories and the table go.
    #[arg(long)]
    out: PathBuf,
    /// List the cells and stop.
    #[arg(long, conflicts_with_all = ["collect", "cell", "row"])]
    plan: bool,
    /// Merge the finished cells into the table and stop.
    #[arg(long, conflicts_with_all = ["cell", "row"])]
    collect: bool,
    /// Run only cell N of --plan (a Slurm array index).
    #[arg(long, value_name = "N", conflicts_with = "row")]
    cell: Option<usize>,
    /// Run only row R (0..5, the table's order) on --fold K.
    #[arg(long, value_name = "R", requires = "fold")]
    row: Option<usize>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let Args { train, folds, out, plan, collect: merge, cell, row } = args;
    if folds == 0 || folds > FOLDS {
        bail!("--folds must be 1..{FOLDS}");
    }
    if plan {
        for c in Cell::all(folds) {
            let done = c.dir(&out).join(CELL_RESULT).is_file();
            println!(
                "{:>3}  row {} fold {}  {:<36} {}  {}",
                c.index(folds),
                c.row,
                c.fold,
                c.label(),
                if done { "done" } else { "todo" },
                c.dir(&out).display()
            );
        }
        return Ok(());
    }
    if merge {
        let (rows, missing) = collect(&out, folds)?;
        if !rows.is_empty() {
            write_table(&out, &rows)?;
            println!("{}", grasp_train::cv::markdown(&rows));
        }
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(|c| format!("{} ({})", c.index(folds), c.label())).collect();
            bail!(
                "{} of {} cells are not finished: {}",
                missing.len(),
                folds * grasp_train::cv::ROWS.len(),
                names.join(", ")
            );
        }
        return Ok(());
    }
    if train.datasets.is_empty() {
        bail!("--dataset is required to train (only --plan and --collect work without it)");
    }
    let base = fit_config(&train, ArchKind::GgCnn, None, LossKind::Plain, false);
    let device = device(train.threads);
    let only = match (cell, row) {
        (Some(n), _) => Some(Cell::from_index(n, folds).with_context(|| {
            format!(
                "--cell {n}: there are {} cells with --folds {folds} (see --plan)",
                folds * grasp_train::cv::ROWS.len()
            )
        })?),
        (None, Some(r)) => {
            anyhow::ensure!(
                r < grasp_train::cv::ROWS.len(),
                "--row {r}: rows are 0..{}",
                grasp_train::cv::ROWS.len() - 1
            );
            anyhow::ensure!(train.fold < folds, "--fold {}: must be below --folds {folds}", train.fold);
            Some(Cell { row: r, fold: train.fold })
        }
        (None, None) => None,
    };
    if let Some(c) = only {
        let r = run_cell(&base, c, &out, device, true)?;
        println!(
            "{}: test success {:.2} %, aux_target_fraction {:.2}, {:.0} s ({})",
            c.label(),
            r.test_success,
            r.aux_target_fraction,
            r.seconds,
            c.dir(&out).join(CELL_RESULT).display()
        );
        return Ok(());
    }
    let rows = grasp_train::cv::run(&base, folds, &out, device, true)?;
    println!("{}", grasp_train::cv::markdown(&rows));
    Ok(())
}
