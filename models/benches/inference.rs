//! Inference benchmark: our CPU backends (tract; torch-on-CPU with `--features torch`) against
//! onnxruntime on the same GG-CNN-shaped ONNX file (300² and the shipped 224²), same thread counts,
//! same run.
//! Also a per-layer profile: the graph is cut after each layer and every prefix is timed in both
//! runtimes, so the difference between consecutive prefixes is the layer's cost.
//!
//! Run: `source scripts/env.sh && cargo bench -p grasp-models --features torch --bench inference`
//! (RUNS=n to change the repetitions). Writes `target/bench-inference.md`.

use grasp_models::arch::Architecture;
use grasp_models::contract::ModelInfo;
use grasp_models::onnx::{export, ExportOptions, GraspModelFile, NamedWeights, UpsampleForm};
use grasp_models::{load_backend, BackendKind, BackendOptions, GraspMaps};
use prost::Message;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// The repository: `GRASP_REPO` when the binary runs elsewhere (scripts/gpu-check.sh), else where
/// it was built.
fn repo() -> PathBuf {
    std::env::var_os("GRASP_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

fn onnxruntime(threads: usize, runs: usize, models: &[PathBuf]) -> Option<BTreeMap<String, f64>> {
    let root = repo();
    let venv = root.join(".venv/bin/python");
    let py = if venv.exists() { venv } else { "python3".into() };
    let out = std::process::Command::new(py)
        .arg(root.join("scripts/bench_onnxruntime.py"))
        .arg(threads.to_string())
        .arg(runs.to_string())
        .args(models)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("onnxruntime unavailable: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(v.as_object()?.iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap())).collect())
}

/// The model cut after the node producing `value`: later nodes are removed (onnxruntime would run
/// them even when nothing reads them) and `value` is the only output.
fn prefix_model(proto: &pb::ModelProto, value: &str) -> pb::ModelProto {
    let mut p = proto.clone();
    let g = p.graph.as_mut().unwrap();
    let last = g.node.iter().position(|n| n.output.iter().any(|o| o == value)).unwrap();
    g.node.truncate(last + 1);
    let mut out = g.output[0].clone();
    out.name = value.into();
    if let Some(pb::TypeProto { value: Some(pb::type_proto::Value::TensorType(t)), .. }) = out.r#type.as_mut() {
        t.shape = None;
    }
    g.output = vec![out];
    p
}

fn tract_ms(proto: &pb::ModelProto, threads: usize, runs: usize) -> f64 {
    let plan = grasp_models::backend::tract::optimised_plan(proto, &[1, 3, 300, 300]).unwrap();
    let x = Tensor::from_shape(&[1, 3, 300, 300], &vec![0.1f32; 3 * 300 * 300]).unwrap();
    let ex = grasp_models::backend::tract::executor(threads);
    time_ms(runs, || {
        tract_linalg::multithread::multithread_tract_scope(ex.clone(), || {
            plan.run(tvec!(x.clone().into_tvalue())).unwrap()
        });
    })
}

/// The network input sides measured: the paper's 300² and the shipped models' 224².
const SIZES: [usize; 2] = [300, 224];

fn main() {
    let runs: usize = std::env::var("RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let dir = repo().join("target/bench-inference");
    std::fs::create_dir_all(&dir).unwrap();
    let arch = Architecture::ggcnn();
    let weights = NamedWeights::random(&arch, 1);
    let forms = UpsampleForm::ALL.map(|f| (f, f.label()));
    let mut report = String::from("## Whole model (GG-CNN, median ms per frame)\n\n| input | backend | up-sampling in the graph | 1 thread | 2 threads | ratio to onnxruntime (1 / 2 threads, same file) |\n| --- | --- | --- | --- | --- | --- |\n");
    let mut kinds = vec![BackendKind::Tract];
    if cfg!(feature = "torch") {
        kinds.push(BackendKind::Torch);
    }
    let mut profiled = None;
    for size in SIZES {
        let info = ModelInfo::new(arch.kind, None, size);
        let x: Vec<f32> = (0..3 * size * size).map(|i| (i % 97) as f32 / 97.0 - 0.5).collect();
        let files: Vec<(PathBuf, GraspModelFile)> = forms
            .iter()
            .map(|(form, name)| {
                let bytes =
                    export(&arch, &weights, &info, &ExportOptions { include_aux: false, upsample: *form }).unwrap();
                let path = dir.join(format!("ggcnn-{size}-{}.onnx", name.replace([' ', '+'], "_")));
                std::fs::write(&path, &bytes).unwrap();
                (path, GraspModelFile::from_bytes(&bytes).unwrap())
            })
            .collect();
        let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
        let ort: Vec<Option<BTreeMap<String, f64>>> = [1, 2].iter().map(|&t| onnxruntime(t, runs, &paths)).collect();
        for ((path, file), (form, form_name)) in files.iter().zip(forms.iter()) {
            let key = path.display().to_string();
            let ort_ms: Vec<Option<f64>> = ort.iter().map(|m| m.as_ref().map(|m| m[&key])).collect();
            for &kind in &kinds {
                let mut per_threads = [0.0; 2];
                let mut name = String::new();
                for (i, threads) in [1usize, 2].into_iter().enumerate() {
                    #[cfg(feature = "torch")]
                    tch::set_num_threads(threads as i32);
                    let mut b = load_backend(kind, file, &BackendOptions { threads: Some(threads) }).unwrap();
                    name = b.name();
                    let mut maps = GraspMaps::zeros(size, false);
                    per_threads[i] = time_ms(runs, || b.infer(&x, &mut maps).unwrap());
                }
                let ratio = |i: usize| ort_ms[i].map(|o| format!("{:.2}×", per_threads[i] / o)).unwrap_or("n/a".into());
                report += &format!(
                    "| {size}² | {name} | {form_name} | {:.1} | {:.1} | {} / {} |\n",
                    per_threads[0],
                    per_threads[1],
                    ratio(0),
                    ratio(1)
                );
            }
            if let (Some(a), Some(b)) = (ort_ms[0], ort_ms[1]) {
                report += &format!("| {size}² | onnxruntime (peer) | {form_name} | {a:.1} | {b:.1} | 1.00× |\n");
            }
            if size == SIZES[0] && *form == UpsampleForm::default() {
                profiled = Some(file.clone());
            }
        }
    }
    let file = &profiled.unwrap();

    // Per-layer profile, 1 thread.
    let cuts: Vec<String> = file
        .proto
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .filter(|n| {
            n.op_type != "Conv"
                || !file
                    .proto
                    .graph
                    .as_ref()
                    .unwrap()
                    .node
                    .iter()
                    .any(|m| m.op_type == "Relu" && m.input[0] == n.output[0])
        })
        .map(|n| n.output[0].clone())
        .collect();
    let mut paths = vec![];
    let mut tract_cum = vec![];
    for (i, c) in cuts.iter().enumerate() {
        let p = prefix_model(&file.proto, c);
        let path = dir.join(format!("prefix-{i:02}.onnx"));
        std::fs::write(&path, p.encode_to_vec()).unwrap();
        tract_cum.push(tract_ms(&p, 1, runs));
        paths.push(path);
    }
    let ort_cum = onnxruntime(1, runs, &paths);
    report += "\n## Per layer, 300², the exporter's default form, 1 thread (ms; difference of consecutive graph prefixes)\n\n| after | tract | onnxruntime |\n| --- | --- | --- |\n";
    for (i, c) in cuts.iter().enumerate() {
        let prev = |v: &[f64]| if i == 0 { 0.0 } else { v[i - 1] };
        let t = tract_cum[i] - prev(&tract_cum);
        let o = ort_cum.as_ref().map(|m| {
            let cum: Vec<f64> = paths.iter().map(|p| m[&p.display().to_string()]).collect();
            format!("{:.1}", cum[i] - prev(&cum))
        });
        report += &format!("| {c} | {t:.1} | {} |\n", o.unwrap_or("n/a".into()));
    }
    println!("{report}");
    std::fs::write(dir.join("../bench-inference.md"), &report).unwrap();
}
