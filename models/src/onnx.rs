//! Writing and reading grasp-model ONNX files (opset 13), with the protobuf types `tract-onnx`
//! exposes. No Python is involved at export time.

use crate::arch::{Architecture, Branch, Layer};
use crate::contract::{self, ContractError, ModelInfo, AUX_OUTPUT, GRASP_OUTPUTS, INPUT_NAME};
use prost::Message;
use std::collections::BTreeMap;
use std::path::Path;
use tract_onnx::pb;

/// The ONNX opset the exporter writes.
pub const OPSET: i64 = 13;
/// ONNX IR version 7 goes with opset 13.
pub const IR_VERSION: i64 = 7;
const FLOAT: i32 = pb::tensor_proto::DataType::Float as i32;

/// One named parameter tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// Parameters by name (names and shapes as [`Architecture::parameters`] lists them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamedWeights(pub BTreeMap<String, WeightTensor>);

impl NamedWeights {
    /// Uniform(−1/√fan_in, 1/√fan_in) weights from a seed — PyTorch's default Conv2d
    /// initialisation — for tests and benchmarks that need a model without training.
    pub fn random(arch: &Architecture, seed: u64) -> Self {
        let mut state = seed;
        let mut next = move || {
            // splitmix64: tiny, seedable, and good enough for test weights.
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f32 / (1u64 << 53) as f32
        };
        let mut map = BTreeMap::new();
        for c in arch.convs() {
            let bound = 1.0 / ((c.in_channels * c.kernel * c.kernel) as f32).sqrt();
            for (name, shape) in [(c.weight_name(), c.weight_shape().to_vec()), (c.bias_name(), vec![c.out_channels])] {
                let data = (0..shape.iter().product()).map(|_| (next() * 2.0 - 1.0) * bound).collect();
                map.insert(name, WeightTensor { shape, data });
            }
        }
        NamedWeights(map)
    }

    /// The parameters of `arch` read back from an exported model's initializers (to write the
    /// same network again in another graph form: `grasp-train export --model`).
    pub fn from_model(proto: &pb::ModelProto, arch: &Architecture) -> Result<Self, ExportError> {
        let inits = proto.graph.as_ref().map(|g| g.initializer.as_slice()).unwrap_or_default();
        let mut map = BTreeMap::new();
        for c in arch.convs() {
            for name in [c.weight_name(), c.bias_name()] {
                let t =
                    inits.iter().find(|t| t.name == name).ok_or_else(|| ExportError::MissingWeight(name.clone()))?;
                let data =
                    float_values(t).map_err(|message| ExportError::BadInitializer { name: name.clone(), message })?;
                let shape = t.dims.iter().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
                map.insert(name, WeightTensor { shape, data });
            }
        }
        Ok(NamedWeights(map))
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<&WeightTensor, ExportError> {
        let w = self.0.get(name).ok_or_else(|| ExportError::MissingWeight(name.to_string()))?;
        if w.shape != shape || w.data.len() != shape.iter().product::<usize>() {
            return Err(ExportError::WeightShape {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: w.shape.clone(),
            });
        }
        if let Some(i) = w.data.iter().position(|v| !v.is_finite()) {
            return Err(ExportError::NonFinite { name: name.to_string(), index: i });
        }
        Ok(w)
    }
}

/// The values of a float32 initializer (`raw_data` little-endian or `float_data`), checked
/// against its dimensions.
pub fn float_values(t: &pb::TensorProto) -> Result<Vec<f32>, String> {
    if t.data_type != FLOAT {
        return Err(format!("element type {}; only float32 is supported", t.data_type));
    }
    let values: Vec<f32> = if !t.raw_data.is_empty() {
        if !t.raw_data.len().is_multiple_of(4) {
            return Err("raw_data length is not a multiple of 4".into());
        }
        t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    } else {
        t.float_data.clone()
    };
    let expected = t.dims.iter().try_fold(1usize, |n, &d| usize::try_from(d).ok().and_then(|d| n.checked_mul(d)));
    if expected != Some(values.len()) {
        return Err(format!("{} values for dims {:?}", values.len(), t.dims));
    }
    Ok(values)
}

/// Why a model could not be exported.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExportError {
    /// An initializer of the model read back could not be decoded.
    #[error("initializer `{name}`: {message}")]
    BadInitializer {
        /// Its name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A parameter of the architecture has no weights.
    #[error("weight `{0}` is missing")]
    MissingWeight(String),
    /// A weight has the wrong shape.
    #[error("weight `{name}` has shape {found:?}, the architecture needs {expected:?}")]
    WeightShape {
        /// The parameter.
        name: String,
        /// The architecture's shape.
        expected: Vec<usize>,
        /// The weight's shape.
        found: Vec<usize>,
    },
    /// A weight is NaN or infinite.
    #[error("weight `{name}` has a non-finite value at index {index}")]
    NonFinite {
        /// The parameter.
        name: String,
        /// The first bad value's index.
        index: usize,
    },
    /// The metadata names another architecture.
    #[error("metadata architecture `{meta}` does not match the exported architecture `{arch}`")]
    ArchMismatch {
        /// The metadata's.
        meta: String,
        /// The architecture's.
        arch: String,
    },
    /// The input size does not fit the network.
    #[error(transparent)]
    InputSize(#[from] crate::arch::ArchError),
}

fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}
fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}
fn attr_str(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}
fn node(
    op: &str,
    name: String,
    inputs: Vec<String>,
    output: String,
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto { op_type: op.into(), name, input: inputs, output: vec![output], attribute, ..Default::default() }
}
fn float_tensor(name: &str, shape: &[usize], data: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: shape.iter().map(|&d| d as i64).collect(),
        data_type: FLOAT,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}
fn int64_tensor(name: &str, data: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: vec![data.len() as i64],
        data_type: pb::tensor_proto::DataType::Int64 as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}
fn value_info(name: &str, shape: &[usize]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension, Dimension};
    let dims = shape
        .iter()
        .map(|&d| Dimension { value: Some(dimension::Value::DimValue(d as i64)), ..Default::default() })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: FLOAT,
                shape: Some(pb::TensorShapeProto { dim: dims }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds the graph for one branch, returning the name of its last value.
struct GraphBuilder<'a> {
    weights: &'a NamedWeights,
    upsample: UpsampleForm,
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    counter: usize,
}

impl GraphBuilder<'_> {
    fn fresh(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("{what}_{}", self.counter)
    }

    fn conv(&mut self, c: &crate::arch::ConvSpec, x: String, output: Option<&str>) -> Result<String, ExportError> {
        for (name, shape) in [(c.weight_name(), c.weight_shape().to_vec()), (c.bias_name(), vec![c.out_channels])] {
            let w = self.weights.get(&name, &shape)?;
            self.initializers.push(float_tensor(&name, &shape, &w.data));
        }
        let (k, d, p) = (c.kernel as i64, c.dilation as i64, c.padding() as i64);
        let conv_out = match (output, c.relu) {
            (Some(o), false) => o.to_string(),
            _ => format!("{}.out", c.name),
        };
        let attrs = vec![
            attr_ints("kernel_shape", &[k, k]),
            attr_ints("pads", &[p, p, p, p]),
            attr_ints("dilations", &[d, d]),
            attr_ints("strides", &[1, 1]),
            attr_int("group", 1),
        ];
        self.nodes.push(node("Conv", c.name.clone(), vec![x, c.weight_name(), c.bias_name()], conv_out.clone(), attrs));
        if !c.relu {
            return Ok(conv_out);
        }
        let relu_out = output.map(str::to_string).unwrap_or_else(|| format!("{}.relu", c.name));
        self.nodes.push(node("Relu", format!("{}.relu", c.name), vec![conv_out], relu_out.clone(), vec![]));
        Ok(relu_out)
    }

    fn layers(&mut self, layers: &[Layer], mut x: String, mut channels: usize) -> Result<String, ExportError> {
        for l in layers {
            x = match l {
                Layer::Conv(c) => self.conv(c, x, None)?,
                Layer::MaxPool { size } => {
                    let out = self.fresh("pool");
                    let s = *size as i64;
                    self.nodes.push(node(
                        "MaxPool",
                        out.clone(),
                        vec![x],
                        out.clone(),
                        vec![attr_ints("kernel_shape", &[s, s]), attr_ints("strides", &[s, s])],
                    ));
                    out
                }
                Layer::Upsample2x => match self.upsample {
                    UpsampleForm::Resize => {
                        let out = self.fresh("upsample");
                        self.constant("upsample2x.scales", || {
                            float_tensor("upsample2x.scales", &[4], &[1.0, 1.0, 2.0, 2.0])
                        });
                        let attrs =
                            vec![attr_str("mode", "linear"), attr_str("coordinate_transformation_mode", "half_pixel")];
                        self.nodes.push(node(
                            UpsampleForm::Resize.carrier_op(),
                            out.clone(),
                            vec![x, String::new(), "upsample2x.scales".into()],
                            out.clone(),
                            attrs,
                        ));
                        out
                    }
                    UpsampleForm::PadConvTranspose => {
                        // Edge-pad by one, then a depthwise stride-2 transposed convolution with the
                        // bilinear kernel [¼ ¾ ¾ ¼]⊗[¼ ¾ ¾ ¼], cropped by 3: exactly half-pixel bilinear ×2
                        // (out[2k] = ¼·in[k−1] + ¾·in[k], out[2k+1] = ¾·in[k] + ¼·in[k+1], borders clamped).
                        let padded = self.edge_pad(x);
                        let kernel_name = format!("upsample2x.kernel{channels}");
                        self.constant(&kernel_name.clone(), || {
                            const W: [f32; 4] = [0.25, 0.75, 0.75, 0.25];
                            let one: Vec<f32> = W.iter().flat_map(|a| W.iter().map(move |b| a * b)).collect();
                            let k: Vec<f32> = one.repeat(channels);
                            float_tensor(&kernel_name, &[channels, 1, 4, 4], &k)
                        });
                        let out = self.fresh("upsample");
                        let attrs = vec![
                            attr_ints("kernel_shape", &[4, 4]),
                            attr_ints("strides", &[2, 2]),
                            attr_ints("pads", &[3, 3, 3, 3]),
                            attr_int("group", channels as i64),
                        ];
                        self.nodes.push(node(
                            UpsampleForm::PadConvTranspose.carrier_op(),
                            out.clone(),
                            vec![padded, kernel_name],
                            out.clone(),
                            attrs,
                        ));
                        out
                    }
                    UpsampleForm::DepthwisePhases => {
                        // The same bilinear ×2 written as its four output phases: on the edge-padded
                        // input, phase (a, b) (row and column parity) is a depthwise 3×3 convolution
                        // with taps [¼ ¾ 0] for an even and [0 ¾ ¼] for an odd output index per axis;
                        // the phases are concatenated phase-major and interleaved by DepthToSpace
                        // (DCR). Every runtime runs depthwise convolutions well, and nothing is
                        // computed at the output resolution but the interleave.
                        let padded = self.edge_pad(x);
                        const TAPS: [[f32; 3]; 2] = [[0.25, 0.75, 0.0], [0.0, 0.75, 0.25]];
                        let mut phases = vec![];
                        for (a, rows) in TAPS.iter().enumerate() {
                            for (b, cols) in TAPS.iter().enumerate() {
                                let kernel_name = format!("upsample2x.phase{a}{b}.kernel{channels}");
                                self.constant(&kernel_name.clone(), || {
                                    let one: Vec<f32> =
                                        rows.iter().flat_map(|r| cols.iter().map(move |c| r * c)).collect();
                                    float_tensor(&kernel_name, &[channels, 1, 3, 3], &one.repeat(channels))
                                });
                                let phase = self.fresh(&format!("upsample_phase{a}{b}"));
                                let attrs =
                                    vec![attr_ints("kernel_shape", &[3, 3]), attr_int("group", channels as i64)];
                                self.nodes.push(node(
                                    "Conv",
                                    phase.clone(),
                                    vec![padded.clone(), kernel_name],
                                    phase.clone(),
                                    attrs,
                                ));
                                phases.push(phase);
                            }
                        }
                        let stacked = self.fresh("upsample_phases");
                        self.nodes.push(node(
                            "Concat",
                            stacked.clone(),
                            phases,
                            stacked.clone(),
                            vec![attr_int("axis", 1)],
                        ));
                        let out = self.fresh("upsample");
                        let attrs = vec![attr_int("blocksize", 2), attr_str("mode", "DCR")];
                        self.nodes.push(node(
                            UpsampleForm::DepthwisePhases.carrier_op(),
                            out.clone(),
                            vec![stacked],
                            out.clone(),
                            attrs,
                        ));
                        out
                    }
                },
            };
            if let Layer::Conv(c) = l {
                channels = c.out_channels;
            }
        }
        Ok(x)
    }

    /// `x` padded by one pixel on each spatial side, repeating the border (`Pad`, mode edge).
    fn edge_pad(&mut self, x: String) -> String {
        let padded = self.fresh("upsample_pad");
        self.constant("upsample2x.pads", || int64_tensor("upsample2x.pads", &[0, 0, 1, 1, 0, 0, 1, 1]));
        self.nodes.push(node(
            "Pad",
            padded.clone(),
            vec![x, "upsample2x.pads".into()],
            padded.clone(),
            vec![attr_str("mode", "edge")],
        ));
        padded
    }

    fn constant(&mut self, name: &str, make: impl FnOnce() -> pb::TensorProto) {
        if !self.initializers.iter().any(|t| t.name == name) {
            self.initializers.push(make());
        }
    }

    fn branch(&mut self, b: &Branch, x: String, channels: usize) -> Result<(), ExportError> {
        let features = self.layers(&b.layers, x, channels)?;
        for h in &b.heads {
            self.conv(&h.conv, features.clone(), Some(h.output))?;
        }
        Ok(())
    }
}

/// How the ×2 bilinear up-sampling is written into the graph. All compute the same function
/// (tested); they differ in speed per runtime (see BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpsampleForm {
    /// ONNX `Resize` (linear, half_pixel): the readable form.
    Resize,
    /// `Pad` (edge) + depthwise `ConvTranspose` with the fixed bilinear kernel.
    PadConvTranspose,
    /// `Pad` (edge) + four depthwise 3×3 `Conv`s (one per output phase) + `Concat` +
    /// `DepthToSpace`: tract's fastest form, onnxruntime's as fast as the others.
    #[default]
    DepthwisePhases,
}

impl UpsampleForm {
    /// Every form, for tests and benchmarks.
    pub const ALL: [UpsampleForm; 3] =
        [UpsampleForm::Resize, UpsampleForm::PadConvTranspose, UpsampleForm::DepthwisePhases];

    /// The ONNX operator the exporter writes only for this form: how a file's form is read back
    /// ([`GraspModelFile::upsample_form`]).
    pub fn carrier_op(self) -> &'static str {
        match self {
            UpsampleForm::Resize => "Resize",
            UpsampleForm::PadConvTranspose => "ConvTranspose",
            UpsampleForm::DepthwisePhases => "DepthToSpace",
        }
    }

    /// The operators that carry the up-sampling, as the benchmarks name the form.
    pub fn label(self) -> &'static str {
        match self {
            UpsampleForm::Resize => "Resize",
            UpsampleForm::PadConvTranspose => "Pad+ConvTranspose",
            UpsampleForm::DepthwisePhases => "Pad+depthwise phases+DepthToSpace",
        }
    }
}

/// What the exporter writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportOptions {
    /// Keep the auxiliary branch and its `aux` output (default: left out, as deployed).
    pub include_aux: bool,
    /// Which up-sampling operators.
    pub upsample: UpsampleForm,
}

impl ExportOptions {
    /// Defaults, with or without the auxiliary output.
    pub fn with_aux(include_aux: bool) -> Self {
        ExportOptions { include_aux, ..Default::default() }
    }
}

/// Serialises `arch` with `weights` and `info`'s metadata into ONNX bytes.
pub fn export(
    arch: &Architecture,
    weights: &NamedWeights,
    info: &ModelInfo,
    opts: &ExportOptions,
) -> Result<Vec<u8>, ExportError> {
    let include_aux = opts.include_aux;
    if info.architecture != arch.kind {
        return Err(ExportError::ArchMismatch { meta: info.architecture.to_string(), arch: arch.kind.to_string() });
    }
    Architecture::check_input_size(info.input_size)?;
    let mut g = GraphBuilder { weights, upsample: opts.upsample, nodes: vec![], initializers: vec![], counter: 0 };
    let shared = g.layers(&arch.shared, INPUT_NAME.to_string(), arch.in_channels)?;
    let shared_channels = arch
        .shared
        .iter()
        .rev()
        .find_map(|l| if let Layer::Conv(c) = l { Some(c.out_channels) } else { None })
        .unwrap_or(arch.in_channels);
    g.branch(&arch.grasp, shared.clone(), shared_channels)?;
    let mut outputs: Vec<&str> = GRASP_OUTPUTS.to_vec();
    let aux_branch = arch.aux.as_ref().filter(|_| include_aux);
    if let Some((_, b)) = aux_branch {
        g.branch(b, shared, shared_channels)?;
        outputs.push(AUX_OUTPUT);
    }
    let mut info = info.clone();
    info.aux_task = arch.aux_task();
    let graph = pb::GraphProto {
        name: format!("grasp_{}", arch.kind),
        node: g.nodes,
        initializer: g.initializers,
        input: vec![value_info(INPUT_NAME, &info.input_shape())],
        output: outputs.iter().map(|o| value_info(o, &info.output_shape())).collect(),
        ..Default::default()
    };
    let model = pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
        producer_name: "grasp-edge".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: info
            .to_metadata()
            .into_iter()
            .map(|(key, value)| pb::StringStringEntryProto { key, value })
            .collect(),
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}

/// `file`'s network (architecture, weights, metadata, auxiliary output if it has one) written
/// again with `upsample`: the same function in another graph form.
pub fn reexport(file: &GraspModelFile, upsample: UpsampleForm) -> Result<Vec<u8>, ExportError> {
    let arch = Architecture::new(file.info.architecture, file.info.aux_task)?;
    let weights = NamedWeights::from_model(&file.proto, &arch)?;
    let include_aux = file.output_names().iter().any(|o| o == AUX_OUTPUT);
    export(&arch, &weights, &file.info, &ExportOptions { include_aux, upsample })
}

/// A parsed, contract-checked model file.
#[derive(Debug, Clone)]
pub struct GraspModelFile {
    /// The ONNX model.
    pub proto: pb::ModelProto,
    /// Its contract metadata.
    pub info: ModelInfo,
}

/// Why a model file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    /// The file could not be read.
    #[error("cannot read model file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file breaks the contract.
    #[error("model file {path}: {source}")]
    Contract {
        /// The file.
        path: String,
        /// How.
        source: ContractError,
    },
}

impl GraspModelFile {
    /// Reads and checks a model file.
    pub fn read(path: &Path) -> Result<Self, ModelFileError> {
        let bytes =
            std::fs::read(path).map_err(|source| ModelFileError::Io { path: path.display().to_string(), source })?;
        Self::from_bytes(&bytes).map_err(|source| ModelFileError::Contract { path: path.display().to_string(), source })
    }

    /// Parses and checks a model in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ContractError> {
        let proto = pb::ModelProto::decode(bytes)
            .map_err(|e| ContractError::NotOnnx(format!("protobuf decoding failed ({e}); is the file truncated?")))?;
        let info = validate(&proto)?;
        Ok(GraspModelFile { proto, info })
    }

    /// Names of the graph outputs, in file order.
    pub fn output_names(&self) -> Vec<String> {
        self.proto.graph.as_ref().map(|g| g.output.iter().map(|o| o.name.clone()).collect()).unwrap_or_default()
    }

    /// The up-sampling form the file was written in (by the operator that carries it), or None
    /// when it has none of the three (not written by this exporter).
    pub fn upsample_form(&self) -> Option<UpsampleForm> {
        let has = |op: &str| self.proto.graph.as_ref().is_some_and(|g| g.node.iter().any(|n| n.op_type == op));
        // ONNX's older `Upsample` is the same interpolation as `Resize`.
        if has("Upsample") {
            return Some(UpsampleForm::Resize);
        }
        UpsampleForm::ALL.into_iter().find(|f| has(f.carrier_op()))
    }
}

fn shape_of(v: &pb::ValueInfoProto) -> Result<Vec<i64>, ContractError> {
    use pb::tensor_shape_proto::dimension::Value;
    let Some(pb::TypeProto { value: Some(pb::type_proto::Value::TensorType(t)), .. }) = &v.r#type else {
        return Err(ContractError::BadShape { name: v.name.clone(), found: vec![], expected: vec![] });
    };
    if t.elem_type != FLOAT {
        return Err(ContractError::BadDtype { name: v.name.clone(), found: t.elem_type });
    }
    // A symbolic dimension reads as -1 and fails the comparison with the contract's fixed shape.
    Ok(t.shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(Value::DimValue(x)) => x,
                    _ => -1,
                })
                .collect()
        })
        .unwrap_or_default())
}

fn check_shape(v: &pb::ValueInfoProto, expected: [usize; 4]) -> Result<(), ContractError> {
    let found = shape_of(v)?;
    if found.iter().map(|&d| d as usize).ne(expected.iter().copied()) || found.iter().any(|&d| d < 0) {
        return Err(ContractError::BadShape { name: v.name.clone(), found, expected: expected.to_vec() });
    }
    Ok(())
}

/// Checks a model against the contract and returns what its metadata says.
pub fn validate(proto: &pb::ModelProto) -> Result<ModelInfo, ContractError> {
    let meta: BTreeMap<String, String> =
        proto.metadata_props.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
    let graph = proto.graph.as_ref().ok_or(ContractError::NoGraph)?;
    let mut info = ModelInfo::from_metadata(&meta)?;
    let initializer_names: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&pb::ValueInfoProto> =
        graph.input.iter().filter(|i| !initializer_names.contains(i.name.as_str())).collect();
    if inputs.len() != 1 || inputs[0].name != INPUT_NAME {
        return Err(ContractError::BadInputs(inputs.iter().map(|i| i.name.clone()).collect()));
    }
    check_shape(inputs[0], info.input_shape())?;
    let names: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    for o in &graph.output {
        if !GRASP_OUTPUTS.contains(&o.name.as_str()) && o.name != AUX_OUTPUT {
            return Err(ContractError::UnexpectedOutput(o.name.clone()));
        }
        check_shape(o, info.output_shape())?;
    }
    for required in GRASP_OUTPUTS {
        if !names.iter().any(|n| n == required) {
            return Err(ContractError::MissingOutput(required, names.clone()));
        }
    }
    info.has_aux_output = names.iter().any(|n| n == contract::AUX_OUTPUT);
    if info.has_aux_output && info.aux_task.is_none() {
        return Err(ContractError::AuxWithoutTask);
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{ArchKind, AuxTask};

    fn exported(include_aux: bool) -> Vec<u8> {
        let arch = Architecture::mtgcnn(AuxTask::Depth);
        let info = ModelInfo::new(ArchKind::MtgCnn, Some(AuxTask::Depth), 64);
        export(&arch, &NamedWeights::random(&arch, 1), &info, &ExportOptions::with_aux(include_aux)).unwrap()
    }

    fn mutate(bytes: &[u8], f: impl FnOnce(&mut pb::ModelProto)) -> Result<GraspModelFile, ContractError> {
        let mut p = pb::ModelProto::decode(bytes).unwrap();
        f(&mut p);
        GraspModelFile::from_bytes(&p.encode_to_vec())
    }

    #[test]
    fn export_validates_with_and_without_aux() {
        let m = GraspModelFile::from_bytes(&exported(true)).unwrap();
        assert!(m.info.has_aux_output);
        assert_eq!(m.output_names(), ["q", "cos", "sin", "width", "aux"]);
        let m = GraspModelFile::from_bytes(&exported(false)).unwrap();
        assert!(!m.info.has_aux_output);
        assert_eq!(m.info.aux_task, Some(AuxTask::Depth));
        let params: usize = m
            .proto
            .graph
            .as_ref()
            .unwrap()
            .initializer
            .iter()
            .filter(|t| !t.name.starts_with("upsample2x."))
            .map(|t| t.dims.iter().product::<i64>() as usize)
            .sum();
        assert_eq!(params, Architecture::ggcnn().parameter_count());
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let bytes = exported(false);
        let e = GraspModelFile::from_bytes(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(matches!(e, ContractError::NotOnnx(_)), "{e}");
        assert!(GraspModelFile::from_bytes(b"definitely not a protobuf \xff\xff\xff").is_err());
        let e = mutate(&bytes, |p| p.graph.as_mut().unwrap().output.retain(|o| o.name != "sin")).unwrap_err();
        assert!(e.to_string().contains("output `sin` is missing"), "{e}");
        let e = mutate(&bytes, |p| p.metadata_props.retain(|m| m.key != contract::keys::WIDTH_SCALE_PX)).unwrap_err();
        assert_eq!(e, ContractError::MissingMetadata(contract::keys::WIDTH_SCALE_PX));
        let e =
            mutate(&bytes, |p| p.graph.as_mut().unwrap().input[0] = value_info("rgb", &[1, 3, 32, 32])).unwrap_err();
        assert!(e.to_string().contains("[1, 3, 32, 32]") && e.to_string().contains("[1, 3, 64, 64]"), "{e}");
        let e = mutate(&bytes, |p| p.graph.as_mut().unwrap().input[0].name = "image".into()).unwrap_err();
        assert!(e.to_string().contains("image"), "{e}");
        let e = mutate(&bytes, |p| p.graph = None).unwrap_err();
        assert_eq!(e, ContractError::NoGraph);
    }

    #[test]
    fn export_refuses_bad_weights() {
        let arch = Architecture::ggcnn();
        let info = ModelInfo::new(ArchKind::GgCnn, None, 64);
        let mut w = NamedWeights::random(&arch, 3);
        w.0.get_mut("grasp.up1.bias").unwrap().data[2] = f32::NAN;
        assert!(matches!(export(&arch, &w, &info, &ExportOptions::default()), Err(ExportError::NonFinite { .. })));
        w.0.remove("shared.conv1.weight");
        assert_eq!(
            export(&arch, &w, &info, &ExportOptions::default()),
            Err(ExportError::MissingWeight("shared.conv1.weight".into()))
        );
    }

    proptest::proptest! {
        #![proptest_config(grasp_fuzz::config())]
        /// Any bytes are a contract-conforming model or a `ContractError`; what is accepted runs
        /// on tract with a finite output size.
        #[test]
        fn fuzz_onnx_reader(bytes in grasp_fuzz::mutated(exported(true))) {
            if let Ok(f) = GraspModelFile::from_bytes(&bytes) {
                proptest::prop_assert!(f.info.input_size <= crate::contract::MAX_INPUT_SIZE);
            }
        }

        /// Metadata values of any text: parsed within their documented ranges, or refused by key.
        #[test]
        fn fuzz_metadata(key in proptest::sample::select(crate::contract::keys::ALL), value in grasp_fuzz::mutated_text("0.25")) {
            let mut m: std::collections::BTreeMap<String, String> =
                ModelInfo::new(ArchKind::GgCnn, None, 224).to_metadata().into_iter().collect();
            m.insert(key.to_string(), value);
            if let Ok(info) = ModelInfo::from_metadata(&m) {
                let d = &info.decode;
                let size = info.input_size as f32;
                proptest::prop_assert!(d.q_sigma <= size && d.angle_sigma <= size && d.width_sigma <= size);
                proptest::prop_assert!(d.peak_min_distance <= info.input_size && d.peak_threshold <= 1.0);
            }
        }
    }
}
