//! Turning a camera/image RGB buffer into the network input exactly as a model's metadata says,
//! and mapping grasps back to the original image's pixels.
//!
//! `center_crop`: the largest centred square is cropped and resized bilinearly (pixel centres
//! aligned, as OpenCV's `INTER_LINEAR`) to S×S; `div255_sub_image_mean`: values / 255, then the mean
//! of all S×S×3 values is subtracted. The resize and normalisation are fused and write into a
//! caller-owned buffer so the edge loop does not allocate per frame.

use crate::contract::{ImageFit, ModelInfo, Normalisation};
use crate::decode::Grasp;

/// Where the model input sits in the original image: input pixel (x, y) ↔ image pixel
/// (x0 + (x + 0.5)·scale − 0.5, y0 + (y + 0.5)·scale − 0.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageMapping {
    pub x0: f32,
    pub y0: f32,
    /// Image pixels per input pixel.
    pub scale: f32,
}

impl ImageMapping {
    pub fn center_crop(width: usize, height: usize, input_size: usize) -> Self {
        let side = width.min(height);
        ImageMapping {
            x0: ((width - side) / 2) as f32,
            y0: ((height - side) / 2) as f32,
            scale: side as f32 / input_size as f32,
        }
    }

    pub fn to_image(&self, x: f32, y: f32) -> (f32, f32) {
        (self.x0 + (x + 0.5) * self.scale - 0.5, self.y0 + (y + 0.5) * self.scale - 0.5)
    }

    pub fn to_input(&self, x: f32, y: f32) -> (f32, f32) {
        ((x - self.x0 + 0.5) / self.scale - 0.5, (y - self.y0 + 0.5) / self.scale - 0.5)
    }

    /// A grasp found in input pixels, in image pixels (angles are unchanged: the scale is uniform).
    pub fn grasp_to_image(&self, g: &Grasp) -> Grasp {
        let (x, y) = self.to_image(g.x, g.y);
        Grasp { x, y, width: g.width * self.scale, ..*g }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PreprocessError {
    #[error("image buffer has {got} bytes, expected {width}×{height}×3 = {}", width * height * 3)]
    BufferSize { width: usize, height: usize, got: usize },
    #[error("image is empty ({width}×{height})")]
    Empty { width: usize, height: usize },
}

/// Writes the NCHW float input for `info` from a packed RGB8 image.
pub fn preprocess_rgb8(info: &ModelInfo, rgb: &[u8], width: usize, height: usize, out: &mut Vec<f32>) -> Result<ImageMapping, PreprocessError> {
    if width == 0 || height == 0 {
        return Err(PreprocessError::Empty { width, height });
    }
    if rgb.len() != width * height * 3 {
        return Err(PreprocessError::BufferSize { width, height, got: rgb.len() });
    }
    let s = info.input_size;
    let mapping = match info.image_fit {
        ImageFit::CenterCrop => ImageMapping::center_crop(width, height, s),
    };
    out.resize(3 * s * s, 0.0);
    let plane = s * s;
    let (xmax, ymax) = ((width - 1) as f32, (height - 1) as f32);
    let mut sum = 0.0f64;
    for oy in 0..s {
        let (_, sy) = mapping.to_image(0.0, oy as f32);
        let sy = sy.clamp(0.0, ymax);
        let (y0, fy) = (sy.floor() as usize, sy.fract());
        let y1 = (y0 + 1).min(height - 1);
        for ox in 0..s {
            let (sx, _) = mapping.to_image(ox as f32, 0.0);
            let sx = sx.clamp(0.0, xmax);
            let (x0, fx) = (sx.floor() as usize, sx.fract());
            let x1 = (x0 + 1).min(width - 1);
            for c in 0..3 {
                let px = |x: usize, y: usize| rgb[(y * width + x) * 3 + c] as f32;
                let top = px(x0, y0) * (1.0 - fx) + px(x1, y0) * fx;
                let bottom = px(x0, y1) * (1.0 - fx) + px(x1, y1) * fx;
                let v = (top * (1.0 - fy) + bottom * fy) / 255.0;
                out[c * plane + oy * s + ox] = v;
                sum += v as f64;
            }
        }
    }
    match info.normalisation {
        Normalisation::Div255SubImageMean => {
            let mean = (sum / (3 * plane) as f64) as f32;
            out.iter_mut().for_each(|v| *v -= mean);
        }
    }
    Ok(mapping)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::ArchKind;

    #[test]
    fn mapping_round_trips_and_centres() {
        let m = ImageMapping::center_crop(640, 480, 300);
        assert_eq!((m.x0, m.y0), (80.0, 0.0));
        assert!((m.scale - 1.6).abs() < 1e-6);
        let (x, y) = m.to_image(149.5, 149.5); // the input's centre
        assert!((x - 320.0 + 0.5).abs() < 1e-3 && (y - 240.0 + 0.5).abs() < 1e-3, "{x} {y}");
        let (ix, iy) = m.to_input(m.to_image(12.0, 250.0).0, m.to_image(12.0, 250.0).1);
        assert!((ix - 12.0).abs() < 1e-4 && (iy - 250.0).abs() < 1e-4);
        let g = m.grasp_to_image(&Grasp { x: 0.0, y: 0.0, angle: 0.4, width: 10.0, quality: 0.9 });
        assert!((g.width - 16.0).abs() < 1e-5 && g.angle == 0.4);
    }

    #[test]
    fn preprocessing_normalises_and_keeps_geometry() {
        let info = ModelInfo::new(ArchKind::GgCnn, None, 8);
        // 16×8 image: left half black, right half white; the centre crop is columns 4..12.
        let (w, h) = (16, 8);
        let mut img = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 8..w {
                img[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        let mut out = vec![];
        let m = preprocess_rgb8(&info, &img, w, h, &mut out).unwrap();
        assert_eq!(m.x0, 4.0);
        assert_eq!(out.len(), 3 * 64);
        let mean: f32 = out.iter().sum::<f32>() / out.len() as f32;
        assert!(mean.abs() < 1e-6);
        // Input column 0 is black (−0.5 after removing the 0.5 mean), column 7 white (+0.5).
        assert!((out[0] + 0.5).abs() < 1e-6 && (out[7] - 0.5).abs() < 1e-6, "{:?}", &out[..8]);
        assert!(matches!(preprocess_rgb8(&info, &img[1..], w, h, &mut out), Err(PreprocessError::BufferSize { .. })));
        assert!(matches!(preprocess_rgb8(&info, &[], 0, 5, &mut out), Err(PreprocessError::Empty { .. })));
    }
}
