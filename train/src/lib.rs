//! Desktop training for grasp-edge (tch / libtorch), the paper's whole method: datasets in the
//! Cornell and Jacquard layouts and a synthetic scene generator, top-down or through a posed camera with its calibration
//! ([`dataset`], [`synth`], [`posed`]), ground
//! truth maps ([`gt`]), augmentation ([`augment`]), object-wise folds ([`split`]), GG-CNN and
//! MTG-CNN built from the architecture data of `grasp-models` ([`net`]) so the trained net and the
//! exported ONNX cannot drift, the plain and positional losses ([`loss`]), training with
//! validation and export ([`fit`]), cross-validation for Table I ([`cv`]) and plots ([`report`]).
#![warn(missing_docs)]

pub mod augment;
pub mod cv;
pub mod dataset;
pub mod fit;
pub mod gt;
pub mod loss;
pub mod net;
pub mod posed;
pub mod randomised;
pub mod report;
pub mod split;
pub mod synth;
