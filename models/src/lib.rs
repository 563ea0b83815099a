//! What a grasp model is, for every other crate of grasp-edge: tensor names and the paper's
//! defaults ([`layout`]), the GG-CNN / MTG-CNN architectures
//! as data ([`arch`]), the ONNX contract ([`contract`]) with a writer and a validating reader
//! ([`onnx`]), inference backends chosen by name at run time ([`backend`]), image preprocessing
//! ([`preprocess`]), decoding maps into grasps ([`decode`]), the whole frame → grasps path
//! ([`detector`]) and the grasp success metric
//! ([`metric`]). Everything except the backends is pure computation without I/O.
//!
//! Layers, each using only those above it: [`names`] and [`layout`]; [`arch`], [`decode`],
//! [`metric`]; [`contract`] ([`ModelInfo`]); [`preprocess`]; [`onnx`]; [`backend`]; [`detector`].
#![warn(missing_docs)]

pub mod arch;
pub mod backend;
pub mod contract;
pub mod decode;
pub mod detector;
pub mod layout;
pub mod metric;
pub mod names;
pub mod onnx;
pub mod preprocess;

pub use arch::{ArchError, ArchKind, Architecture, AuxTask};
pub use backend::{load_backend, BackendError, BackendKind, BackendOptions, InferenceBackend};
pub use contract::ModelInfo;
pub use decode::{DecodeParams, Decoder, Grasp, GraspMaps, PeakMode};
pub use onnx::{GraspModelFile, NamedWeights};
