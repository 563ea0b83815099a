//! One frame → grasps: preprocess as the model's metadata says, infer, decode, map back to the
//! frame's pixels. The edge binary and `grasp-train eval` both detect through this, so a model is
//! evaluated exactly as it runs on the robot. Buffers are owned and reused, so steady-state frames do not allocate here.

use crate::backend::{BackendError, InferenceBackend};
use crate::decode::{DecodeParams, Decoder, Grasp, GraspMaps};
use crate::preprocess::{preprocess_rgb8, PreprocessError};
use std::time::Instant;

/// Why a frame could not be turned into grasps.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The image does not fit the model's input.
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Milliseconds spent in each stage of one detection.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    /// Preprocessing, ms.
    pub pre: f64,
    /// Inference, ms.
    pub infer: f64,
    /// Decoding, ms.
    pub post: f64,
}

/// The whole frame → grasps path of one model: preprocess, infer, decode, map back.
pub struct GraspDetector {
    backend: Box<dyn InferenceBackend>,
    decoder: Decoder,
    input: Vec<f32>,
    maps: GraspMaps,
    grasps: Vec<Grasp>,
    /// Grasps dropped because the maps held non-finite values, since creation.
    pub non_finite_dropped: u64,
    /// Frames whose output maps held a NaN or an infinity, since creation.
    pub non_finite_frames: u64,
}

impl GraspDetector {
    /// Uses the model's own decoding defaults unless `decode` overrides them.
    pub fn new(backend: Box<dyn InferenceBackend>, decode: Option<DecodeParams>) -> Self {
        let info = backend.info().clone();
        let params = decode.unwrap_or_else(|| info.decode.clone());
        GraspDetector {
            backend,
            decoder: Decoder::new(params),
            input: Vec::with_capacity(3 * info.input_size * info.input_size),
            maps: GraspMaps::zeros(info.input_size, info.has_aux_output),
            grasps: Vec::new(),
            non_finite_dropped: 0,
            non_finite_frames: 0,
        }
    }

    /// The backend's name and device, for logs.
    pub fn backend_name(&self) -> String {
        self.backend.name()
    }

    /// The model's contract metadata.
    pub fn info(&self) -> &crate::contract::ModelInfo {
        self.backend.info()
    }

    /// Detects up to `top_k` grasps in a packed RGB8 frame, best first, in the frame's pixels.
    pub fn detect(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
        top_k: usize,
    ) -> Result<(&[Grasp], StageTimes), DetectError> {
        let t0 = Instant::now();
        let mapping = preprocess_rgb8(self.backend.info(), rgb, width, height, &mut self.input)?;
        let t1 = Instant::now();
        self.backend.infer(&self.input, &mut self.maps)?;
        let t2 = Instant::now();
        // A NaN Q map simply has no peak: without this count a broken model would look like an
        // empty table. Warned on the first such frame and every 100th.
        let bad = self.maps.count_non_finite();
        if bad > 0 {
            self.non_finite_frames += 1;
            if self.non_finite_frames == 1 || self.non_finite_frames.is_multiple_of(100) {
                log::warn!(
                    "the model produced {bad} non-finite output values ({} such frames so far); no grasp comes from them",
                    self.non_finite_frames
                );
            }
        }
        let dropped = self.decoder.decode(&self.maps, top_k, &mut self.grasps);
        if dropped > 0 {
            self.non_finite_dropped += dropped as u64;
            log::warn!("{dropped} grasp candidate(s) dropped: the model produced non-finite values");
        }
        for g in self.grasps.iter_mut() {
            *g = mapping.grasp_to_source(g);
        }
        let t3 = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        Ok((&self.grasps, StageTimes { pre: ms(t0, t1), infer: ms(t1, t2), post: ms(t2, t3) }))
    }

    /// The last raw maps (for overlays and recordings).
    pub fn maps(&self) -> &GraspMaps {
        &self.maps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::ArchKind;
    use crate::backend::BackendError;
    use crate::contract::ModelInfo;

    /// A backend whose every output is `value`.
    struct Constant {
        info: ModelInfo,
        value: f32,
    }

    impl InferenceBackend for Constant {
        fn name(&self) -> String {
            "constant".into()
        }
        fn info(&self) -> &ModelInfo {
            &self.info
        }
        fn infer(&mut self, _input: &[f32], out: &mut GraspMaps) -> Result<(), BackendError> {
            for m in [&mut out.q, &mut out.cos, &mut out.sin, &mut out.width] {
                m.iter_mut().for_each(|v| *v = self.value);
            }
            Ok(())
        }
    }

    #[test]
    fn nan_outputs_are_counted_not_silent() {
        let info = ModelInfo::new(ArchKind::GgCnn, None, 32);
        let rgb = vec![128u8; 48 * 40 * 3];
        let mut nan = GraspDetector::new(Box::new(Constant { info: info.clone(), value: f32::NAN }), None);
        assert!(nan.detect(&rgb, 48, 40, 3).unwrap().0.is_empty());
        assert!(nan.detect(&rgb, 48, 40, 3).unwrap().0.is_empty());
        assert_eq!(nan.non_finite_frames, 2);
        let mut fine = GraspDetector::new(Box::new(Constant { info, value: 0.5 }), None);
        fine.detect(&rgb, 48, 40, 3).unwrap();
        assert_eq!(fine.non_finite_frames, 0);
    }
}
