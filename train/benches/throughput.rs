//! Training throughput of `grasp-train` (tch) against PyTorch eager running the same network, loss
//! and Adam step, same threads, same run. Data loading is excluded on both sides.
//!
//! Run: `source scripts/env.sh && GRASP_TORCH_PYTHON=/path/to/python-with-torch cargo bench -p grasp-train --bench throughput`
//! (STEPS=n, SIZE=px, BATCH=n to change). Writes `target/bench-train.md`.

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

fn main() {
    let (size, batch, steps) = (env("SIZE", 300) as i64, env("BATCH", 8) as i64, env("STEPS", 10));
    let mut report = format!("## Training throughput (GG-CNN, positional loss, Adam; {size}×{size}, batch {batch}, {steps} steps; images/s)\n\n| threads | grasp-train (tch) | PyTorch eager | ratio |\n| --- | --- | --- | --- |\n");
    for threads in [1, 2] {
        let a = ours(threads, size, batch, steps);
        let b = pytorch(threads, size, batch, steps);
        let ratio = b.map(|b| format!("{:.2}×", a / b)).unwrap_or("n/a".into());
        report +=
            &format!("| {threads} | {a:.2} | {} | {ratio} |\n", b.map(|b| format!("{b:.2}")).unwrap_or("n/a".into()));
    }
    println!("{report}");
    std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-train.md"), &report).unwrap();
}
