//! The paper's Table I: GG-CNN, GG-CNN_p, MTG-CNN saliency/depth with L and L_p, trained on each
//! fold and tested on its held-out test split; mean ± standard deviation over folds, as a
//! markdown table. The same code runs at toy scale in CI and at full scale on a GPU.

use crate::fit::{load_run, test_success, FitConfig, Fitter, SampleStore};
use crate::loss::LossKind;
use anyhow::{Context, Result};
use grasp_models::arch::{ArchKind, AuxTask};
use grasp_models::contract::ModelInfo;
use grasp_models::names::NamedValue;
use std::path::Path;
use tch::Device;

/// (label, arch, aux, loss) in the paper's row order.
pub const ROWS: [(&str, ArchKind, Option<AuxTask>, LossKind); 6] = [
    ("GG-CNN", ArchKind::GgCnn, None, LossKind::Plain),
    ("GG-CNN_p", ArchKind::GgCnn, None, LossKind::Positional),
    ("MTG-CNN", ArchKind::MtgCnn, Some(AuxTask::Mask), LossKind::Plain),
    ("MTG-CNN_p", ArchKind::MtgCnn, Some(AuxTask::Mask), LossKind::Positional),
    ("MTG-CNN", ArchKind::MtgCnn, Some(AuxTask::Depth), LossKind::Plain),
    ("MTG-CNN_p", ArchKind::MtgCnn, Some(AuxTask::Depth), LossKind::Positional),
];

/// One row of Table I.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CvRow {
    /// The paper's model name.
    pub model: String,
    /// Auxiliary task, or `-`.
    pub aux: String,
    /// `plain` or `positional`.
    pub loss: String,
    /// Test success per fold, percent.
    pub test_success: Vec<f64>,
    /// Mean over folds, percent.
    pub mean: f64,
    /// Sample standard deviation over folds.
    pub std: f64,
    /// Mean over folds of the test success with the runtime's thresholded decoding, percent.
    pub thresholded_mean: f64,
    /// Mean validation success per epoch over folds (Fig. 6).
    pub val_curve: Vec<(usize, f64)>,
    /// Fraction of training samples that had an auxiliary target (mean over folds and epochs):
    /// 1.0 is what the MTG-CNN rows must show to be what they are named.
    pub aux_target_fraction: f64,
}

/// Mean and sample standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// The rows as the paper's Table I in markdown.
pub fn markdown(rows: &[CvRow]) -> String {
    let mut s = String::from("| Model | Auxiliary Task | Loss | Successful Grasps (test, argmax, mean ± std) | Folds | aux_target_fraction | top-1 with Q ≥ threshold |\n| --- | --- | --- | --- | --- | --- | --- |\n");
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {:.2}% ± {:.2} | {} | {:.2} | {:.2}% |\n",
            r.model,
            r.aux,
            r.loss,
            r.mean,
            r.std,
            r.test_success.len(),
            r.aux_target_fraction,
            r.thresholded_mean
        );
    }
    s
}

/// One cell of the table: one row trained and tested on one fold. Cells are independent runs,
/// each in its own directory with its own result file, so they can run anywhere and in any order
/// (one Slurm array task each: `scripts/slurm-cv.sh`), resume after an interruption, and be
/// merged into the table by [`collect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    /// Index into [`ROWS`].
    pub row: usize,
    /// Fold, 0-based.
    pub fold: usize,
}

/// The file a finished cell leaves in its directory.
pub const CELL_RESULT: &str = "cell.json";

impl Cell {
    /// Every cell of `folds` folds, row-major: cell `i` is row `i / folds`, fold `i % folds`.
    pub fn all(folds: usize) -> Vec<Cell> {
        (0..ROWS.len()).flat_map(|row| (0..folds).map(move |fold| Cell { row, fold })).collect()
    }

    /// Cell number `i` of [`Cell::all`] (a Slurm array index), if there is one.
    pub fn from_index(i: usize, folds: usize) -> Option<Cell> {
        (folds > 0 && i < ROWS.len() * folds).then(|| Cell { row: i / folds, fold: i % folds })
    }

    /// Its number in [`Cell::all`].
    pub fn index(&self, folds: usize) -> usize {
        self.row * folds + self.fold
    }

    /// Its run directory under `out`.
    pub fn dir(&self, out: &Path) -> std::path::PathBuf {
        let (_, arch, aux, loss) = ROWS[self.row];
        out.join(format!("{arch}-{}-{loss}", aux.map_or("none", |a| a.as_str()))).join(format!("fold{}", self.fold))
    }

    /// `GG-CNN_p (-, positional) fold 2`.
    pub fn label(&self) -> String {
        let (name, _, aux, loss) = ROWS[self.row];
        format!("{name} ({}, {loss}) fold {}", aux_name(aux), self.fold)
    }
}

fn aux_name(aux: Option<AuxTask>) -> &'static str {
    aux.map_or("-", |a| if a == AuxTask::Mask { "Saliency" } else { "Depth" })
}

/// What a finished cell records (`cell.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CellResult {
    /// Index into [`ROWS`].
    pub row: usize,
    /// Fold.
    pub fold: usize,
    /// Test success, percent (argmax decoding, as the paper).
    pub test_success: f64,
    /// Test success with the runtime's decoding (best peak with Q ≥ the threshold), percent.
    #[serde(default)]
    pub test_success_thresholded: f64,
    /// Validation success per epoch, percent.
    pub val_curve: Vec<f64>,
    /// Mean over epochs of the fraction of training samples with an auxiliary target.
    pub aux_target_fraction: f64,
    /// Wall time of the cell, training and test.
    pub seconds: f64,
}

/// Trains and tests one cell under `out`, unless its result is already there; an interrupted
/// cell resumes from its last checkpoint. The result file is written last (atomically), so a
/// cell either has a complete result or none.
pub fn run_cell(base: &FitConfig, cell: Cell, out: &Path, device: Device, progress: bool) -> Result<CellResult> {
    let dir = cell.dir(out);
    let result_path = dir.join(CELL_RESULT);
    if let Ok(text) = std::fs::read_to_string(&result_path) {
        if let Ok(done) = serde_json::from_str::<CellResult>(&text) {
            log::info!("cv: {} already done ({:.2} %)", cell.label(), done.test_success);
            return Ok(done);
        }
    }
    let t0 = std::time::Instant::now();
    let (_, arch, aux, loss) = ROWS[cell.row];
    let cfg = FitConfig { arch, aux, loss, fold: cell.fold, ..base.clone() };
    let resume = dir.join("state.json").exists();
    log::info!("cv: {}{}", cell.label(), if resume { ", resuming" } else { "" });
    let outcome = Fitter { config: cfg.clone(), out: dir.clone(), device, resume, progress }.run()?;
    let archi = cfg.architecture()?;
    let (_vs, net) = load_run(&dir, &archi, device)?;
    let info = ModelInfo::new(archi.kind, archi.aux_task(), cfg.input_size);
    let mut store = SampleStore::open(&cfg.datasets, cfg.max_samples, cfg.seed)?;
    let test = if outcome.split.test.is_empty() { &outcome.split.val } else { &outcome.split.test };
    let epochs = outcome.history.len().max(1) as f64;
    let success = test_success(&mut store, test, &net, &info, device)?;
    let result = CellResult {
        row: cell.row,
        fold: cell.fold,
        test_success: success.argmax,
        test_success_thresholded: success.thresholded,
        val_curve: outcome.history.iter().map(|m| m.val_success).collect(),
        aux_target_fraction: outcome.history.iter().map(|m| m.aux_target_fraction).sum::<f64>() / epochs,
        seconds: t0.elapsed().as_secs_f64(),
    };
    let tmp = dir.join(format!("{CELL_RESULT}.tmp"));
    std::fs::write(&tmp, serde_json::to_string_pretty(&result)?)?;
    std::fs::rename(&tmp, &result_path)?;
    Ok(result)
}

/// The finished cells of `folds` folds under `out`, merged into rows (a row with no finished cell
/// is left out), and the cells that are missing.
pub fn collect(out: &Path, folds: usize) -> Result<(Vec<CvRow>, Vec<Cell>)> {
    let mut missing = vec![];
    let mut rows = vec![];
    for (row, (label, _, aux, loss)) in ROWS.iter().enumerate() {
        let mut done: Vec<CellResult> = vec![];
        for fold in 0..folds {
            let cell = Cell { row, fold };
            let path = cell.dir(out).join(CELL_RESULT);
            match std::fs::read_to_string(&path) {
                Ok(text) => done.push(
                    serde_json::from_str(&text).with_context(|| format!("{}: not a cell result", path.display()))?,
                ),
                Err(_) => missing.push(cell),
            }
        }
        if done.is_empty() {
            continue;
        }
        let tests: Vec<f64> = done.iter().map(|c| c.test_success).collect();
        let (mean, std) = mean_std(&tests);
        let epochs = done.iter().map(|c| c.val_curve.len()).min().unwrap_or(0);
        let val_curve = (0..epochs)
            .map(|e| (e + 1, done.iter().map(|c| c.val_curve[e]).sum::<f64>() / done.len() as f64))
            .collect();
        rows.push(CvRow {
            model: label.to_string(),
            aux: aux_name(*aux).into(),
            loss: loss.to_string(),
            test_success: tests,
            mean,
            std,
            thresholded_mean: done.iter().map(|c| c.test_success_thresholded).sum::<f64>() / done.len() as f64,
            val_curve,
            aux_target_fraction: done.iter().map(|c| c.aux_target_fraction).sum::<f64>() / done.len() as f64,
        });
    }
    Ok((rows, missing))
}

/// Writes table.md, cv.json and the Fig. 6 plot of `rows` under `out`.
pub fn write_table(out: &Path, rows: &[CvRow]) -> Result<()> {
    std::fs::write(out.join("table.md"), markdown(rows))?;
    std::fs::write(out.join("cv.json"), serde_json::to_string_pretty(rows)?)?;
    std::fs::write(out.join("fig6_val_success.csv"), curves_csv(rows))?;
    let series: Vec<(String, Vec<(usize, f64)>)> =
        rows.iter().map(|r| (format!("{} {} ({})", r.model, r.aux, r.loss), r.val_curve.clone())).collect();
    crate::report::plot_success(
        &out.join("fig6_val_success.png"),
        "Average validation success per epoch (Fig. 6)",
        &series,
    )
}

/// Fig. 6's data: one line per epoch, the mean validation success (%) of each row over its folds
/// (empty where a row has fewer epochs).
pub fn curves_csv(rows: &[CvRow]) -> String {
    let mut s = String::from("epoch");
    for r in rows {
        s += &format!(",{} {} ({})", r.model, r.aux, r.loss);
    }
    s.push('\n');
    let mut epochs: Vec<usize> = rows.iter().flat_map(|r| r.val_curve.iter().map(|&(e, _)| e)).collect();
    epochs.sort_unstable();
    epochs.dedup();
    for e in epochs {
        s += &e.to_string();
        for r in rows {
            s += &r.val_curve.iter().find(|&&(x, _)| x == e).map_or(",".into(), |(_, v)| format!(",{v:.2}"));
        }
        s.push('\n');
    }
    s
}

/// Every cell of `folds` folds (finished ones are skipped, interrupted ones resume), then the
/// table: table.md, cv.json and the Fig. 6 plot under `out`.
pub fn run(base: &FitConfig, folds: usize, out: &Path, device: Device, progress: bool) -> Result<Vec<CvRow>> {
    for cell in Cell::all(folds) {
        run_cell(base, cell, out, device, progress)?;
    }
    let (rows, missing) = collect(out, folds)?;
    anyhow::ensure!(missing.is_empty(), "cells missing after running them all: {missing:?}");
    write_table(out, &rows)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[70.0, 72.0, 74.0]);
        assert!((m - 72.0).abs() < 1e-12 && (s - 2.0).abs() < 1e-12);
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
    }

    #[test]
    fn table_format() {
        let rows = vec![CvRow {
            model: "GG-CNN_p".into(),
            aux: "-".into(),
            loss: "positional".into(),
            test_success: vec![78.0, 79.84],
            mean: 78.92,
            std: 0.97,
            thresholded_mean: 71.5,
            val_curve: vec![],
            aux_target_fraction: 0.0,
        }];
        let md = markdown(&rows);
        assert!(md.contains("| GG-CNN_p | - | positional | 78.92% ± 0.97 | 2 | 0.00 | 71.50% |"), "{md}");
        let mut two = vec![CvRow { val_curve: vec![(1, 10.0), (2, 20.5)], ..rows[0].clone() }];
        two.push(CvRow { model: "GG-CNN".into(), loss: "plain".into(), val_curve: vec![(1, 30.0)], ..rows[0].clone() });
        assert_eq!(curves_csv(&two), "epoch,GG-CNN_p - (positional),GG-CNN - (plain)\n1,10.00,30.00\n2,20.50,\n");
    }

    #[test]
    fn cells_are_numbered_row_major_and_name_their_directories() {
        let cells = Cell::all(5);
        assert_eq!(cells.len(), 30);
        assert_eq!(Cell::from_index(7, 5), Some(Cell { row: 1, fold: 2 }));
        assert_eq!(Cell::from_index(30, 5), None);
        assert_eq!(Cell::from_index(0, 0), None);
        assert!(cells.iter().enumerate().all(|(i, c)| c.index(5) == i && Cell::from_index(i, 5) == Some(*c)));
        let dir = Cell { row: 5, fold: 4 }.dir(Path::new("runs"));
        assert_eq!(dir, Path::new("runs/mtgcnn-depth-positional/fold4"));
        assert_eq!(Cell { row: 2, fold: 0 }.label(), "MTG-CNN (Saliency, plain) fold 0");
    }

    /// Finished cells merge into rows; a failed or missing cell leaves the others intact and is
    /// named; a damaged result file is an error naming it.
    #[test]
    fn collect_merges_finished_cells_and_names_the_missing() {
        let out = tempfile::tempdir().unwrap();
        let write = |cell: Cell, success: f64, aux: f64| {
            let dir = cell.dir(out.path());
            std::fs::create_dir_all(&dir).unwrap();
            let r = CellResult {
                row: cell.row,
                fold: cell.fold,
                test_success: success,
                test_success_thresholded: success - 10.0,
                val_curve: vec![success / 2.0, success],
                aux_target_fraction: aux,
                seconds: 1.0,
            };
            std::fs::write(dir.join(CELL_RESULT), serde_json::to_string(&r).unwrap()).unwrap();
        };
        write(Cell { row: 0, fold: 0 }, 60.0, 0.0);
        write(Cell { row: 0, fold: 1 }, 70.0, 0.0);
        write(Cell { row: 5, fold: 1 }, 80.0, 1.0);
        let (rows, missing) = collect(out.path(), 2).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].model.as_str(), rows[0].mean, rows[0].test_success.len()), ("GG-CNN", 65.0, 2));
        assert_eq!(rows[0].thresholded_mean, 55.0);
        assert_eq!(rows[0].val_curve, vec![(1, 32.5), (2, 65.0)]);
        assert_eq!(
            (rows[1].aux.as_str(), rows[1].loss.as_str(), rows[1].aux_target_fraction),
            ("Depth", "positional", 1.0)
        );
        assert_eq!(missing.len(), 12 - 3);
        assert!(missing.contains(&Cell { row: 5, fold: 0 }) && !missing.contains(&Cell { row: 0, fold: 1 }));
        std::fs::write(Cell { row: 3, fold: 0 }.dir(out.path()).join(CELL_RESULT), "{").ok();
        std::fs::create_dir_all(Cell { row: 3, fold: 0 }.dir(out.path())).unwrap();
        std::fs::write(Cell { row: 3, fold: 0 }.dir(out.path()).join(CELL_RESULT), "{").unwrap();
        let e = format!("{:#}", collect(out.path(), 2).unwrap_err());
        assert!(e.contains("mtgcnn-mask-positional/fold0/cell.json"), "{e}");
    }
}
