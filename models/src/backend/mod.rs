//! Inference backends behind one small trait, chosen by name at run time (as tract's runtimes):
//! `tract` (CPU, always compiled), `torch` (libtorch via tch, cargo feature `torch`, CUDA when
//! available) and `auto` (torch on CUDA if compiled in and a GPU is present, else tract).

use crate::contract::{ModelInfo, AUX_OUTPUT};
use crate::decode::GraspMaps;
use crate::onnx::GraspModelFile;

#[cfg(feature = "torch")]
pub mod torch;
pub mod tract;

/// Runs a grasp model on one preprocessed input.
pub trait InferenceBackend: Send {
    /// What actually runs, e.g. `tract`, `torch-cpu`, `torch-cuda`.
    fn name(&self) -> String;
    /// The model's contract metadata.
    fn info(&self) -> &ModelInfo;
    /// `input` is the NCHW tensor of [`ModelInfo::input_shape`]; every map of `out` is overwritten.
    fn infer(&mut self, input: &[f32], out: &mut GraspMaps) -> Result<(), BackendError>;
}

/// Which backend runs a model, chosen by name at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// libtorch on CUDA when compiled in and a GPU is present, else tract.
    Auto,
    /// tract on the CPU.
    Tract,
    /// libtorch (needs `--features torch`).
    Torch,
}

crate::named_enum!(BackendKind, "backend", BackendKind::Auto => "auto", BackendKind::Tract => "tract", BackendKind::Torch => "torch");

/// Why a backend could not load or run a model.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// This build has no libtorch backend.
    #[error("the `torch` backend is not compiled into this binary (rebuild with `--features torch`)")]
    TorchNotCompiled,
    /// The graph uses an operator the backend does not run.
    #[error("unsupported ONNX operator `{op}` (node `{node}`) in the torch backend")]
    UnsupportedOp {
        /// The ONNX operator.
        op: String,
        /// The node using it.
        node: String,
    },
    /// A node the backend cannot interpret.
    #[error("ONNX node `{node}`: {message}")]
    BadNode {
        /// The node.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// The input tensor has the wrong number of values.
    #[error("input has {got} values, the model expects {expected} ({shape:?})")]
    InputSize {
        /// Values expected.
        expected: usize,
        /// Values given.
        got: usize,
        /// The expected shape.
        shape: [usize; 4],
    },
    /// An output the contract requires is missing.
    #[error("the model produced no output `{0}`")]
    MissingOutput(String),
    /// An output has the wrong number of values.
    #[error("output `{name}` has {got} values, expected {expected}")]
    OutputSize {
        /// The output.
        name: String,
        /// Values expected.
        expected: usize,
        /// Values produced.
        got: usize,
    },
    /// A thread count of 0 or beyond [`max_threads`].
    #[error("{got} inference threads: use 1 to {max} (4 per core)")]
    Threads {
        /// Threads asked for.
        got: usize,
        /// The most accepted on this machine.
        max: usize,
    },
    /// tract failed.
    #[error("tract: {0}")]
    Tract(String),
    /// libtorch failed.
    #[error("torch: {0}")]
    Torch(String),
}

/// Options that every backend understands.
#[derive(Debug, Clone, Default)]
pub struct BackendOptions {
    /// CPU threads (None: the backend's default: one per core for tract, libtorch's own for torch).
    pub threads: Option<usize>,
}

/// The most inference threads accepted: four per core (more only adds contention, and a typo
/// such as 100000 would start that many threads).
pub fn max_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 4
}

impl BackendOptions {
    /// Checks the options: a thread count from 1 to [`max_threads`].
    pub fn validate(&self) -> Result<(), BackendError> {
        match self.threads {
            Some(n) if n == 0 || n > max_threads() => Err(BackendError::Threads { got: n, max: max_threads() }),
            _ => Ok(()),
        }
    }
}

/// Loads `file` with the backend named by `kind`. `auto` never fails for want of a GPU: it falls
/// back to tract and logs why.
pub fn load_backend(
    kind: BackendKind,
    file: &GraspModelFile,
    opts: &BackendOptions,
) -> Result<Box<dyn InferenceBackend>, BackendError> {
    opts.validate()?;
    match kind {
        BackendKind::Tract => Ok(Box::new(tract::TractBackend::load(file, opts)?)),
        BackendKind::Torch => load_torch(file, opts, false),
        BackendKind::Auto => match load_torch(file, opts, true) {
            Ok(b) => Ok(b),
            Err(reason) => {
                log::info!("backend auto: using tract on the CPU ({reason})");
                Ok(Box::new(tract::TractBackend::load(file, opts)?))
            }
        },
    }
}

#[cfg(feature = "torch")]
fn load_torch(
    file: &GraspModelFile,
    opts: &BackendOptions,
    require_cuda: bool,
) -> Result<Box<dyn InferenceBackend>, BackendError> {
    let device = torch::best_device();
    if require_cuda && device == tch::Device::Cpu {
        return Err(BackendError::Torch("no CUDA device available to libtorch".into()));
    }
    Ok(Box::new(torch::TorchBackend::load(file, device, opts)?))
}

#[cfg(not(feature = "torch"))]
fn load_torch(_: &GraspModelFile, _: &BackendOptions, _: bool) -> Result<Box<dyn InferenceBackend>, BackendError> {
    Err(BackendError::TorchNotCompiled)
}

/// Checks the input length against the model's input shape.
pub(crate) fn check_input(info: &ModelInfo, input: &[f32]) -> Result<(), BackendError> {
    let shape = info.input_shape();
    let expected = shape.iter().product();
    if input.len() != expected {
        return Err(BackendError::InputSize { expected, got: input.len(), shape });
    }
    Ok(())
}

/// Copies one named output into the matching map of `out`.
pub(crate) fn store_output(
    info: &ModelInfo,
    out: &mut GraspMaps,
    name: &str,
    values: &[f32],
) -> Result<(), BackendError> {
    let n = info.input_size * info.input_size;
    if values.len() != n {
        return Err(BackendError::OutputSize { name: name.into(), expected: n, got: values.len() });
    }
    out.size = info.input_size;
    let dst = match name {
        "q" => &mut out.q,
        "cos" => &mut out.cos,
        "sin" => &mut out.sin,
        "width" => &mut out.width,
        AUX_OUTPUT => out.aux.get_or_insert_with(Vec::new),
        other => return Err(BackendError::MissingOutput(other.into())),
    };
    dst.clear();
    dst.extend_from_slice(values);
    Ok(())
}
