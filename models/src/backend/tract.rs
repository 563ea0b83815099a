//! The CPU backend: tract, with the input shape fixed and the graph optimised once at load.

use super::{check_input, store_output, BackendError, BackendOptions, InferenceBackend};
use crate::contract::ModelInfo;
use crate::decode::GraspMaps;
use crate::onnx::GraspModelFile;
use std::sync::Arc;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::tract_linalg::multithread::{multithread_tract_scope, Executor};

/// tract's executor for exactly `threads` threads of matrix products.
///
/// One thread is tract's `SingleThread` executor, not a one-thread pool: tract hands the work of
/// a pool of one to rayon's *global* pool, which has a thread per core, so `--threads 1` ran on
/// every core (and the "1 thread" benchmarks measured all of them: BENCHMARKS.md, stop 21's correction).
pub fn executor(threads: usize) -> Executor {
    if threads <= 1 {
        Executor::SingleThread
    } else {
        Executor::multithread(threads)
    }
}

/// An optimised, runnable tract model.
pub type Plan = Arc<TypedRunnableModel>;

/// tract's choices made for this project's networks while the plan is optimised, measured per
/// layer (BENCHMARKS.md, issue 13). Its `DirectSpatialConv`, which tract picks for the
/// full-resolution convolutions (at most 576 inputs per output point), is 1.3–1.9× slower on
/// them than im2col and a matrix product once the vendored tract-core copies contiguous im2col
/// rows (vendor/tract-core/PATCH.md): 11.9 against 6.2 ms for conv1 at 224², 1 thread.
pub const KNOBS: [(&str, &str); 1] = [("TRACT_DISABLE_DIRECT_SPATIAL", "true")];

/// `proto` optimised by tract for one input shape, with [`KNOBS`]: the plan the backend runs
/// (the inference bench times graph prefixes through it too).
pub fn optimised_plan(proto: &tract_onnx::pb::ModelProto, input_shape: &[usize]) -> Result<Plan, BackendError> {
    optimised_plan_with(proto, input_shape, &[])
}

/// [`optimised_plan`] with more tract knobs set on top of [`KNOBS`] (tests and benches compare
/// the vendored patches against tract's own lowerings with them, e.g.
/// `("TRACT_DISABLE_DIRECT_CONV", "true")`).
pub fn optimised_plan_with(
    proto: &tract_onnx::pb::ModelProto,
    input_shape: &[usize],
    extra_knobs: &[(&str, &str)],
) -> Result<Plan, BackendError> {
    let model = tract_onnx::onnx()
        .model_for_proto_model(proto)
        .map_err(terr)?
        .with_input_fact(0, f32::fact(input_shape).into())
        .map_err(terr)?;
    let tuning =
        tract_onnx::tract_core::knobs::KnobScope::new(KNOBS.iter().chain(extra_knobs).copied()).map_err(terr)?;
    tuning.enter(|| model.into_optimized()).map_err(terr)?.into_runnable().map_err(terr)
}

/// The model on tract (CPU), optimised for its fixed input shape.
pub struct TractBackend {
    info: ModelInfo,
    plan: Plan,
    outputs: Vec<String>,
    executor: Executor,
}

fn terr(e: impl std::fmt::Display) -> BackendError {
    BackendError::Tract(format!("{e:#}"))
}

impl TractBackend {
    /// Optimises `file` for its input shape, with the threads of `opts`.
    pub fn load(file: &GraspModelFile, opts: &BackendOptions) -> Result<Self, BackendError> {
        let info = file.info.clone();
        let shape = info.input_shape();
        if let Some(form) = file.upsample_form().filter(|f| *f != crate::onnx::UpsampleForm::default()) {
            // Measured (BENCHMARKS.md, issue 13): 1.1–1.9× the default form's time on one thread,
            // 2.5–3.2× on two. The weights are the same; only the operators differ.
            log::warn!(
                "this model's up-sampling is written as {}, which tract runs 1.1–3.2× slower than the default form; \
                 rewrite it (same weights, same outputs) with `grasp-train export --model MODEL.onnx --out NEW.onnx`",
                form.label()
            );
        }
        let plan = optimised_plan(&file.proto, &shape)?;
        // The default is one thread per core.
        let threads = opts.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let executor = executor(threads);
        Ok(TractBackend { info, plan, outputs: file.output_names(), executor })
    }
}

impl InferenceBackend for TractBackend {
    fn name(&self) -> String {
        "tract".into()
    }
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn infer(&mut self, input: &[f32], out: &mut GraspMaps) -> Result<(), BackendError> {
        check_input(&self.info, input)?;
        let tensor = Tensor::from_shape(&self.info.input_shape(), input).map_err(terr)?;
        let run = || self.plan.run(tvec!(tensor.into_tvalue()));
        let results = multithread_tract_scope(self.executor.clone(), run).map_err(terr)?;
        for (name, value) in self.outputs.iter().zip(results.iter()) {
            store_output(
                &self.info,
                out,
                name,
                value.try_as_plain_ram().and_then(|v| v.as_slice::<f32>()).map_err(terr)?,
            )?;
        }
        Ok(())
    }
}
