//! The libtorch backend. libtorch cannot load ONNX, so this walks the ONNX graph itself and runs
//! each node with the matching tch op, on CUDA when available, else on the CPU. The ops are the
//! ones grasp models use; anything else is refused at load time with the op's name.

use super::{check_input, store_output, BackendError, BackendOptions, InferenceBackend};
use crate::contract::{ModelInfo, INPUT_NAME};
use crate::decode::GraspMaps;
use crate::onnx::GraspModelFile;
use std::collections::HashMap;
use tch::{Device, Kind, Tensor};
use tract_onnx::pb;

/// The CUDA device if libtorch can use one. libtorch's CUDA kernels live in `libtorch_cuda.so`,
/// which our build does not link (so one binary runs on machines without CUDA): load it here
/// where present, which registers the CUDA backend with libtorch.
pub fn best_device() -> Device {
    static LOADED: std::sync::Once = std::sync::Once::new();
    LOADED.call_once(|| {
        let lib = c"libtorch_cuda.so";
        // SAFETY: dlopen with a valid C string; the handle is intentionally leaked so the
        // library stays loaded for the life of the process.
        let handle = unsafe { libc::dlopen(lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if handle.is_null() {
            log::debug!("torch: {lib:?} not loadable; CUDA unavailable to libtorch");
        }
    });
    if tch::Cuda::is_available() {
        Device::Cuda(0)
    } else {
        Device::Cpu
    }
}

#[derive(Debug)]
enum Op {
    Conv {
        stride: Vec<i64>,
        pad: Vec<i64>,
        dilation: Vec<i64>,
        group: i64,
    },
    ConvTranspose {
        stride: Vec<i64>,
        pad: Vec<i64>,
        output_pad: Vec<i64>,
        dilation: Vec<i64>,
        group: i64,
    },
    MaxPool {
        kernel: Vec<i64>,
        stride: Vec<i64>,
        pad: Vec<i64>,
        ceil: bool,
    },
    /// ONNX DepthToSpace: `dcr` = depth-column-row order (the default), else column-row-depth
    /// (torch's `pixel_shuffle`).
    DepthToSpace {
        block: i64,
        dcr: bool,
    },
    Relu,
    Sigmoid,
    Tanh,
    Add,
    Sub,
    Mul,
    Concat {
        axis: i64,
    },
    /// Spatial padding of NCHW: [left, right, top, bottom]; `edge` replicates the border.
    Pad {
        pads: [i64; 4],
        edge: bool,
    },
    /// Bilinear resize with `half_pixel` or `align_corners` coordinates, by constant scales.
    ResizeLinear {
        scales: (f64, f64),
        align_corners: bool,
    },
    Identity,
}

#[derive(Debug)]
struct Node {
    name: String,
    op: Op,
    inputs: Vec<String>,
    output: String,
}

/// The model on libtorch (CUDA where available): the ONNX graph walked with torch operators.
pub struct TorchBackend {
    info: ModelInfo,
    device: Device,
    constants: HashMap<String, Tensor>,
    nodes: Vec<Node>,
    outputs: Vec<String>,
    /// Host copy of one output, reused across frames.
    scratch: Vec<f32>,
}

// SAFETY: tch tensors are reference-counted handles to libtorch tensors, which may be used from
// any thread; the backend is only ever used by one thread at a time (`&mut self`).
unsafe impl Send for TorchBackend {}

fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}
fn ints(n: &pb::NodeProto, name: &str, default: &[i64]) -> Vec<i64> {
    attr(n, name).map(|a| a.ints.clone()).unwrap_or_else(|| default.to_vec())
}
fn int(n: &pb::NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map(|a| a.i).unwrap_or(default)
}
fn string(n: &pb::NodeProto, name: &str, default: &str) -> String {
    attr(n, name).map(|a| String::from_utf8_lossy(&a.s).into_owned()).unwrap_or_else(|| default.to_string())
}
fn bad(n: &pb::NodeProto, message: impl Into<String>) -> BackendError {
    BackendError::BadNode { node: n.name.clone(), message: message.into() }
}

/// ONNX pads are [begin..., end...]; torch wants one symmetric pad per axis.
fn symmetric_pads(n: &pb::NodeProto) -> Result<Vec<i64>, BackendError> {
    let p = ints(n, "pads", &[0, 0, 0, 0]);
    let half = p.len() / 2;
    if p[..half] != p[half..] {
        return Err(bad(n, format!("asymmetric pads {p:?} are not supported")));
    }
    if attr(n, "auto_pad").is_some_and(|a| !a.s.is_empty() && a.s != b"NOTSET") {
        return Err(bad(n, "auto_pad is not supported; write explicit pads"));
    }
    Ok(p[..half].to_vec())
}

/// The values of an int64 initializer (e.g. `Pad`'s pads).
fn int64_values(t: &pb::TensorProto) -> Result<Vec<i64>, BackendError> {
    if t.data_type != pb::tensor_proto::DataType::Int64 as i32 {
        return Err(BackendError::BadNode {
            node: t.name.clone(),
            message: format!("expected an int64 tensor, found element type {}", t.data_type),
        });
    }
    Ok(if t.raw_data.is_empty() {
        t.int64_data.clone()
    } else {
        t.raw_data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
    })
}

fn tensor_from_proto(t: &pb::TensorProto) -> Result<Tensor, BackendError> {
    let dims: Vec<i64> = t.dims.clone();
    if t.data_type == pb::tensor_proto::DataType::Int64 as i32 {
        return Ok(Tensor::from_slice(&int64_values(t)?).reshape(&dims));
    }
    let values = crate::onnx::float_values(t).map_err(|message| BackendError::BadNode {
        node: t.name.clone(),
        message: format!("initializer: {message}"),
    })?;
    Ok(Tensor::from_slice(&values).reshape(&dims))
}

impl TorchBackend {
    /// Builds the graph of `file` on `device`.
    pub fn load(file: &GraspModelFile, device: Device, _opts: &BackendOptions) -> Result<Self, BackendError> {
        let graph = file.proto.graph.as_ref().ok_or_else(|| BackendError::Torch("model has no graph".into()))?;
        let mut constants = HashMap::new();
        for t in &graph.initializer {
            constants.insert(t.name.clone(), tensor_from_proto(t)?.to_device(device));
        }
        let mut nodes = Vec::with_capacity(graph.node.len());
        for n in &graph.node {
            let op = match n.op_type.as_str() {
                "Conv" => Op::Conv {
                    stride: ints(n, "strides", &[1, 1]),
                    pad: symmetric_pads(n)?,
                    dilation: ints(n, "dilations", &[1, 1]),
                    group: int(n, "group", 1),
                },
                "ConvTranspose" => Op::ConvTranspose {
                    stride: ints(n, "strides", &[1, 1]),
                    pad: symmetric_pads(n)?,
                    output_pad: ints(n, "output_padding", &[0, 0]),
                    dilation: ints(n, "dilations", &[1, 1]),
                    group: int(n, "group", 1),
                },
                "MaxPool" => {
                    let kernel = ints(n, "kernel_shape", &[]);
                    if kernel.len() != 2 {
                        return Err(bad(n, "MaxPool needs a 2-D kernel_shape"));
                    }
                    Op::MaxPool {
                        stride: ints(n, "strides", &[1, 1]),
                        pad: symmetric_pads(n)?,
                        ceil: int(n, "ceil_mode", 0) != 0,
                        kernel,
                    }
                }
                "DepthToSpace" => {
                    let mode = string(n, "mode", "DCR");
                    let block = int(n, "blocksize", 0);
                    if block < 1 || !(mode == "DCR" || mode == "CRD") {
                        return Err(bad(n, format!("DepthToSpace blocksize {block} mode `{mode}` is not supported")));
                    }
                    Op::DepthToSpace { block, dcr: mode == "DCR" }
                }
                "Relu" => Op::Relu,
                "Sigmoid" => Op::Sigmoid,
                "Tanh" => Op::Tanh,
                "Add" => Op::Add,
                "Sub" => Op::Sub,
                "Mul" => Op::Mul,
                "Identity" => Op::Identity,
                "Concat" => Op::Concat { axis: int(n, "axis", 1) },
                "Pad" => {
                    let mode = string(n, "mode", "constant");
                    let pads_init = n.input.get(1).and_then(|name| graph.initializer.iter().find(|t| &t.name == name));
                    let p = int64_values(pads_init.ok_or_else(|| bad(n, "Pad needs constant pads"))?)?;
                    let constant_zero = n.input.get(2).is_none_or(|s| s.is_empty());
                    if p.len() != 8
                        || p[0] != 0
                        || p[1] != 0
                        || p[4] != 0
                        || p[5] != 0
                        || !(mode == "edge" || (mode == "constant" && constant_zero))
                    {
                        return Err(bad(
                            n,
                            format!("Pad {p:?} mode `{mode}`: only spatial edge or zero padding of NCHW is supported"),
                        ));
                    }
                    Op::Pad { pads: [p[3], p[7], p[2], p[6]], edge: mode == "edge" }
                }
                "Resize" | "Upsample" => {
                    let mode = string(n, "mode", "nearest");
                    let ctm = string(n, "coordinate_transformation_mode", "half_pixel");
                    if mode != "linear"
                        || !(ctm == "half_pixel" || ctm == "pytorch_half_pixel" || ctm == "align_corners")
                    {
                        return Err(bad(n, format!("Resize mode `{mode}` with coordinates `{ctm}` is not supported (linear + half_pixel/align_corners are)")));
                    }
                    let scales_name =
                        n.input.get(if n.op_type == "Upsample" { 1 } else { 2 }).filter(|s| !s.is_empty());
                    let scales = scales_name
                        .and_then(|s| constants.get(s))
                        .ok_or_else(|| bad(n, "Resize needs constant scales (sizes are not supported)"))?;
                    let s = Vec::<f32>::try_from(scales.to_device(Device::Cpu).flatten(0, -1))
                        .map_err(|e| bad(n, e.to_string()))?;
                    if s.len() != 4 || s[0] != 1.0 || s[1] != 1.0 {
                        return Err(bad(n, format!("Resize scales {s:?}: only spatial scaling of NCHW is supported")));
                    }
                    Op::ResizeLinear { scales: (s[2] as f64, s[3] as f64), align_corners: ctm == "align_corners" }
                }
                other => return Err(BackendError::UnsupportedOp { op: other.to_string(), node: n.name.clone() }),
            };
            if n.output.len() != 1 {
                return Err(bad(n, format!("{} outputs; one is supported", n.output.len())));
            }
            nodes.push(Node { name: n.name.clone(), op, inputs: n.input.clone(), output: n.output[0].clone() });
        }
        Ok(TorchBackend {
            info: file.info.clone(),
            device,
            constants,
            nodes,
            outputs: file.output_names(),
            scratch: Vec::new(),
        })
    }

    fn run(&self, input: Tensor) -> Result<HashMap<String, Tensor>, BackendError> {
        let mut values: HashMap<String, Tensor> = HashMap::new();
        values.insert(INPUT_NAME.to_string(), input);
        for n in &self.nodes {
            let get = |i: usize| -> Result<&Tensor, BackendError> {
                let name = n.inputs.get(i).ok_or_else(|| BackendError::BadNode {
                    node: n.name.clone(),
                    message: format!("missing input {i}"),
                })?;
                values.get(name).or_else(|| self.constants.get(name)).ok_or_else(|| BackendError::BadNode {
                    node: n.name.clone(),
                    message: format!("input `{name}` is not computed before this node"),
                })
            };
            let opt = |i: usize| n.inputs.get(i).filter(|s| !s.is_empty()).map(|_| get(i)).transpose();
            let y = match &n.op {
                Op::Conv { stride, pad, dilation, group } => {
                    get(0)?.conv2d(get(1)?, opt(2)?, stride, pad, dilation, *group)
                }
                Op::ConvTranspose { stride, pad, output_pad, dilation, group } => {
                    get(0)?.conv_transpose2d(get(1)?, opt(2)?, stride, pad, output_pad, *group, dilation)
                }
                Op::MaxPool { kernel, stride, pad, ceil } => get(0)?.max_pool2d(kernel, stride, pad, [1, 1], *ceil),
                Op::DepthToSpace { block, dcr } => {
                    let x = get(0)?;
                    if *dcr {
                        // (N, b·b·C, H, W) → (N, b, b, C, H, W) → (N, C, H, b, W, b) → (N, C, H·b, W·b).
                        let [n_, c, h, w]: [i64; 4] = x.size().try_into().map_err(|_| BackendError::BadNode {
                            node: n.name.clone(),
                            message: format!("DepthToSpace needs NCHW, got {:?}", x.size()),
                        })?;
                        let b = *block;
                        if c % (b * b) != 0 {
                            return Err(BackendError::BadNode {
                                node: n.name.clone(),
                                message: format!("DepthToSpace: {c} channels are not a multiple of {b}²"),
                            });
                        }
                        x.reshape([n_, b, b, c / (b * b), h, w]).permute([0, 3, 4, 1, 5, 2]).reshape([
                            n_,
                            c / (b * b),
                            h * b,
                            w * b,
                        ])
                    } else {
                        x.pixel_shuffle(*block)
                    }
                }
                Op::Relu => get(0)?.relu(),
                Op::Sigmoid => get(0)?.sigmoid(),
                Op::Tanh => get(0)?.tanh(),
                Op::Add => get(0)? + get(1)?,
                Op::Sub => get(0)? - get(1)?,
                Op::Mul => get(0)? * get(1)?,
                Op::Identity => get(0)?.shallow_clone(),
                Op::Concat { axis } => {
                    let parts = (0..n.inputs.len()).map(get).collect::<Result<Vec<_>, _>>()?;
                    Tensor::cat(&parts, *axis)
                }
                Op::Pad { pads, edge } => {
                    if *edge {
                        get(0)?.replication_pad2d(pads.as_slice())
                    } else {
                        get(0)?.constant_pad_nd(pads.as_slice())
                    }
                }
                Op::ResizeLinear { scales, align_corners } => {
                    let x = get(0)?;
                    let size = x.size();
                    let (h, w) =
                        ((size[2] as f64 * scales.0).floor() as i64, (size[3] as f64 * scales.1).floor() as i64);
                    x.upsample_bilinear2d([h, w], *align_corners, Some(scales.0), Some(scales.1))
                }
            };
            values.insert(n.output.clone(), y);
        }
        Ok(values)
    }
}

impl InferenceBackend for TorchBackend {
    fn name(&self) -> String {
        match self.device {
            Device::Cpu => "torch-cpu".into(),
            _ => "torch-cuda".into(),
        }
    }
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn infer(&mut self, input: &[f32], out: &mut GraspMaps) -> Result<(), BackendError> {
        check_input(&self.info, input)?;
        let shape = self.info.input_shape().map(|d| d as i64);
        let _guard = tch::no_grad_guard();
        let x = Tensor::from_slice(input).reshape(shape).to_device(self.device);
        let values = self.run(x)?;
        let TorchBackend { info, outputs, scratch, .. } = self;
        for name in outputs.iter() {
            let t = values.get(name).ok_or_else(|| BackendError::MissingOutput(name.clone()))?;
            let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
            let n = t.numel();
            scratch.resize(n, 0.0);
            t.copy_data(scratch, n);
            store_output(info, out, name, scratch)?;
        }
        Ok(())
    }
}
