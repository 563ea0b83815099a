//! Training throughput of `grasp-train` (tch) against PyTorch eager running the same network, loss
//! and Adam step, same threads, same run, on random tensors (no data loading on either side); and
//! the rate of a real training epoch on synthetic scenes (loading, decoding, augmentation and
//! ground truth on the prefetch thread) against that random-data rate (target ≥ 90 %).
//!
//! Run: `source scripts/env.sh && GRASP_TORCH_PYTHON=/path/to/python-with-torch cargo bench -p grasp-train --bench throughput`
//! (STEPS=n, SIZE=px, BATCH=n, SCENES=n to change). Writes `target/bench-train.md`.

use grasp_models::arch::Architecture;
use grasp_train::loss::{loss, LossKind, Targets};
use grasp_train::net::GraspNet;
use std::time::Instant;
use tch::nn::OptimizerConfig;
use tch::{Device, Kind, Tensor};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn ours(threads: usize, size: i64, batch: i64, steps: usize) -> f64 {
    tch::set_num_threads(threads as i32);
    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let net = GraspNet::new(&vs, &Architecture::ggcnn());
    let mut opt = tch::nn::Adam::default().build(&vs, 1e-3).unwrap();
    let x = Tensor::rand([batch, 3, size, size], (Kind::Float, Device::Cpu)) - 0.5;
    let q = Tensor::rand([batch, 1, size, size], (Kind::Float, Device::Cpu)).gt(0.9).to_kind(Kind::Float);
    let r = || Tensor::rand([batch, 1, size, size], (Kind::Float, Device::Cpu));
    let t = Targets {
        q,
        cos: r(),
        sin: r(),
        width: r(),
        aux: r(),
        aux_present: Tensor::zeros([batch], (Kind::Float, Device::Cpu)),
    };
    let mut step = || {
        let out = net.forward(&x);
        let l = loss(LossKind::Positional, &out, &t);
        opt.backward_step(&l.total);
    };
    for _ in 0..3 {
        step();
    }
    let start = Instant::now();
    for _ in 0..steps {
        step();
    }
    (steps as i64 * batch) as f64 / start.elapsed().as_secs_f64()
}

fn pytorch(threads: usize, size: i64, batch: i64, steps: usize) -> Option<f64> {
    let py = std::env::var("GRASP_TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/bench_pytorch_train.py");
    let out = std::process::Command::new(&py)
        .arg(script)
        .args([threads.to_string(), size.to_string(), batch.to_string(), steps.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "PyTorch peer unavailable ({py}): {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        );
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["images_per_second"].as_f64()
}

/// Images/s of a real training epoch (`Fitter`: loading, decoding, augmentation and ground truth
/// on the prefetch thread) on `scenes` synthetic scenes in the Jacquard layout, written first.
fn real_data(threads: usize, size: usize, batch: usize, scenes: usize) -> f64 {
    use grasp_train::dataset::DatasetSpec;
    use grasp_train::fit::{FitConfig, Fitter};
    tch::set_num_threads(threads as i32);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synth");
    grasp_train::synth::write_dataset(&data, scenes, 3, 300, |_| {}).unwrap();
    let config = FitConfig {
        datasets: vec![format!("jacquard:{}", data.display()).parse::<DatasetSpec>().unwrap()],
        arch: grasp_models::ArchKind::GgCnn,
        aux: None,
        loss: LossKind::Positional,
        epochs: 1,
        batch_size: batch,
        learning_rate: 1e-3,
        lr_schedule: Default::default(),
        input_size: size,
        fold: 0,
        split: grasp_train::split::SplitMode::Object,
        seed: 0,
        max_samples: None,
        augment: true,
        zoom: grasp_train::augment::DEFAULT_ZOOM,
        export_aux: false,
        init_from: None,
        ema: None,
        width_weight: 1.0,
        head_only: None,
        val_rescale: vec![1.0],
    };
    let outcome = Fitter { config, out: dir.path().join("run"), device: Device::Cpu, resume: false, progress: false }
        .run()
        .unwrap();
    outcome.history[0].images_per_second
}

fn main() {
    // As `grasp-train fit` does (the PyTorch peer keeps its allocator's defaults).
    grasp_train::fit::keep_large_allocations_on_the_heap();
    let (size, batch, steps) = (env("SIZE", 300) as i64, env("BATCH", 8) as i64, env("STEPS", 10));
    let scenes = env("SCENES", 120);
    let mut report = format!("## Training throughput (GG-CNN, positional loss, Adam; {size}×{size}, batch {batch}, {steps} steps; images/s)\n\n| threads | grasp-train (tch), random data | PyTorch eager, random data | ratio | grasp-train, real data ({scenes} synthetic scenes, augmented) | real / random |\n| --- | --- | --- | --- | --- | --- |\n");
    for threads in [1, 2] {
        let a = ours(threads, size, batch, steps);
        let b = pytorch(threads, size, batch, steps);
        let real = real_data(threads, size as usize, batch as usize, scenes);
        let ratio = b.map(|b| format!("{:.2}×", a / b)).unwrap_or("n/a".into());
        report += &format!(
            "| {threads} | {a:.2} | {} | {ratio} | {real:.2} | {:.0} % |\n",
            b.map(|b| format!("{b:.2}")).unwrap_or("n/a".into()),
            100.0 * real / a
        );
    }
    println!("{report}");
    std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-train.md"), &report).unwrap();
}
