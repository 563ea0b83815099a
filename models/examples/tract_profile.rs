//! Per-node profile of the plan the tract backend runs: milliseconds per optimised node, mean of
//! 15 runs after 3 warm-ups, on the executor the backend uses for that many threads.
//!
//! Run: `cargo run --release -p grasp-models --example tract_profile -- MODEL.onnx [THREADS]`
//! (it shows, for example, which convolutions tract runs as `DirectSpatialConv` and which as im2col
//! and a matrix product, and what each costs).
use grasp_models::backend::tract::optimised_plan;
use std::time::Instant;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::{eval, SimpleState};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        return Err("usage: tract_profile MODEL.onnx [THREADS]".into());
    };
    let threads = args.get(2).map_or(Ok(1), |s| s.parse::<usize>())?;
    let file = grasp_models::GraspModelFile::read(std::path::Path::new(path))?;
    let shape = file.info.input_shape();
    let plan = optimised_plan(&file.proto, &shape)?;
    if std::env::var_os("TRACT_PROFILE_PLAN").is_some() {
        // The optimised graph itself, node by node with its inputs (what fused into what).
        println!("{}", plan.model());
    }
    let x = Tensor::from_shape(&shape, &vec![0.1f32; shape.iter().product()])?;
    let pool = grasp_models::backend::tract::executor(threads);
    let (warm_up, runs) = (3, 15);
    let mut per_node: Vec<(String, f64)> = vec![];
    let mut whole = vec![];
    for r in 0..warm_up + runs {
        let mut state = SimpleState::new(&plan)?;
        let mut times: Vec<(String, f64)> = vec![];
        let t0 = Instant::now();
        tract_linalg::multithread::multithread_tract_scope(pool.clone(), || {
            state.run_plan_with_eval(tvec!(x.clone().into_tvalue()), |s, st, node, inputs| {
                let t = Instant::now();
                let out = eval(s, st, node, inputs);
                times.push((format!("{} ({})", node.name, node.op.name()), t.elapsed().as_secs_f64() * 1e3));
                out
            })
        })?;
        if r >= warm_up {
            whole.push(t0.elapsed().as_secs_f64() * 1e3);
            if per_node.is_empty() {
                per_node = times.iter().map(|(n, _)| (n.clone(), 0.0)).collect();
            }
            for (acc, (_, t)) in per_node.iter_mut().zip(&times) {
                acc.1 += t / runs as f64;
            }
        }
    }
    per_node.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("| ms | node (tract op) |\n| ---: | --- |");
    for (name, ms) in per_node.iter().filter(|(_, ms)| *ms >= 0.05) {
        println!("| {ms:.2} | {name} |");
    }
    whole.sort_by(f64::total_cmp);
    println!("\nwhole plan: median {:.1} ms ({threads} thread(s), {path})", whole[runs / 2]);
    Ok(())
}
