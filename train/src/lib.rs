//! Desktop training for grasp-edge (tch / libtorch): the GG-CNN and MTG-CNN networks built from the
//! architecture data of `grasp-models`, so that what is trained is exactly what is exported, and
//! the export of trained weights into a contract-conforming ONNX grasp model.

pub mod net;
