//! The CPU backend: tract, with the input shape fixed and the graph optimised once at load.

use super::{check_input, store_output, BackendError, BackendOptions, InferenceBackend};
use crate::contract::ModelInfo;
use crate::decode::GraspMaps;
use crate::onnx::GraspModelFile;
use std::sync::Arc;
use tract_onnx::prelude::*;

type Plan = Arc<TypedRunnableModel>;

/// The model on tract (CPU), optimised for its fixed input shape.
pub struct TractBackend {
    info: ModelInfo,
    plan: Plan,
    outputs: Vec<String>,
    executor: Option<tract_onnx::tract_core::tract_linalg::multithread::Executor>,
}

fn terr(e: impl std::fmt::Display) -> BackendError {
    BackendError::Tract(format!("{e:#}"))
}

impl TractBackend {
    /// Optimises `file` for its input shape, with the threads of `opts`.
    pub fn load(file: &GraspModelFile, opts: &BackendOptions) -> Result<Self, BackendError> {
        let info = file.info.clone();
        let shape = info.input_shape();
        let plan = tract_onnx::onnx()
            .model_for_proto_model(&file.proto)
            .map_err(terr)?
            .with_input_fact(0, f32::fact(shape).into())
            .map_err(terr)?
            .into_optimized()
            .map_err(terr)?
            .into_runnable()
            .map_err(terr)?;
        let executor = match opts.threads {
            Some(n) if n > 1 => Some(tract_onnx::tract_core::tract_linalg::multithread::Executor::multithread(n)),
            _ => None,
        };
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
        let results = match &self.executor {
            Some(ex) => tract_onnx::tract_core::tract_linalg::multithread::multithread_tract_scope(ex.clone(), run),
            None => run(),
        }
        .map_err(terr)?;
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
