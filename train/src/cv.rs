//! The paper's Table I: GG-CNN, GG-CNN_p, MTG-CNN saliency/depth with L and L_p, trained on each
//! fold and tested on its held-out test split; mean ± standard deviation over folds, as a
//! markdown table. The same code runs at toy scale in CI and at full scale on a GPU.

use crate::fit::{load_run, test_success, FitConfig, Fitter, SampleStore};
use crate::loss::LossKind;
use anyhow::Result;
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
    /// Mean validation success per epoch over folds (Fig. 6).
    pub val_curve: Vec<(usize, f64)>,
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
    let mut s = String::from("| Model | Auxiliary Task | Loss | Successful Grasps (test, mean ± std) | Folds |\n| --- | --- | --- | --- | --- |\n");
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {:.2}% ± {:.2} | {} |\n",
            r.model,
            r.aux,
            r.loss,
            r.mean,
            r.std,
            r.test_success.len()
        );
    }
    s
}

/// Trains and tests every row on every fold under `out`; writes table.md, cv.json and the Fig. 6 plot.
pub fn run(base: &FitConfig, folds: usize, out: &Path, device: Device, progress: bool) -> Result<Vec<CvRow>> {
    let mut rows = vec![];
    for (label, arch, aux, loss) in ROWS {
        let mut tests = vec![];
        let mut curves: Vec<Vec<f64>> = vec![];
        for fold in 0..folds {
            let cfg = FitConfig { arch, aux, loss, fold, ..base.clone() };
            let dir =
                out.join(format!("{arch}-{}-{loss}", aux.map_or("none", |a| a.as_str()))).join(format!("fold{fold}"));
            log::info!("cv: {label} ({}, {loss} loss), fold {fold}", aux.map_or("no aux", |a| a.as_str()));
            let outcome = Fitter { config: cfg.clone(), out: dir.clone(), device, resume: false, progress }.run()?;
            let archi = cfg.architecture()?;
            let (_vs, net) = load_run(&dir, &archi, device)?;
            let info = ModelInfo::new(archi.kind, archi.aux_task(), cfg.input_size);
            let mut store = SampleStore::open(&cfg.datasets, cfg.max_samples, cfg.seed)?;
            let test = if outcome.split.test.is_empty() { &outcome.split.val } else { &outcome.split.test };
            tests.push(test_success(&mut store, test, &net, &info, device)?);
            curves.push(outcome.history.iter().map(|m| m.val_success).collect());
        }
        let (mean, std) = mean_std(&tests);
        let epochs = curves.iter().map(Vec::len).min().unwrap_or(0);
        let val_curve =
            (0..epochs).map(|e| (e + 1, curves.iter().map(|c| c[e]).sum::<f64>() / curves.len() as f64)).collect();
        rows.push(CvRow {
            model: label.into(),
            aux: aux.map_or("-", |a| if a == AuxTask::Mask { "Saliency" } else { "Depth" }).into(),
            loss: loss.to_string(),
            test_success: tests,
            mean,
            std,
            val_curve,
        });
    }
    std::fs::write(out.join("table.md"), markdown(&rows))?;
    std::fs::write(out.join("cv.json"), serde_json::to_string_pretty(&rows)?)?;
    let series: Vec<(String, Vec<(usize, f64)>)> =
        rows.iter().map(|r| (format!("{} {} ({})", r.model, r.aux, r.loss), r.val_curve.clone())).collect();
    crate::report::plot_success(
        &out.join("fig6_val_success.png"),
        "Average validation success per epoch (Fig. 6)",
        &series,
    )?;
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
            val_curve: vec![],
        }];
        let md = markdown(&rows);
        assert!(md.contains("| GG-CNN_p | - | positional | 78.92% ± 0.97 | 2 |"), "{md}");
    }
}
