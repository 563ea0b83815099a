//! The bottom layer of the model core: the tensor names of the ONNX contract and the paper's
//! defaults, which the architectures ([`crate::arch`]), the decoder ([`crate::decode`]) and the
//! contract ([`crate::contract`], which re-exports them) all use. It depends on nothing.

/// The input tensor's name.
pub const INPUT_NAME: &str = "rgb";
/// Input channels (RGB).
pub const INPUT_CHANNELS: usize = 3;
/// The grasp outputs, in the order the network computes them.
pub const GRASP_OUTPUTS: [&str; 4] = ["q", "cos", "sin", "width"];
/// The auxiliary output (depth or saliency), present only in training exports.
pub const AUX_OUTPUT: &str = "aux";
/// Paper §III-B: the width map in [0, 1] is scaled to [0, 150] px.
pub const DEFAULT_WIDTH_SCALE_PX: f32 = 150.0;
/// Paper §III-B: 300×300 input.
pub const DEFAULT_INPUT_SIZE: usize = 300;
