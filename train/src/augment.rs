//! Training augmentation (paper: random crop and zoom; plus rotation) as one random similarity
//! transform per sample, applied to the image, its maps and its labels alike
//! ([`grasp_models::preprocess::ImageTransform`]). Validation and test views are the plain centre
//! crop the edge binary uses: no augmentation, and no cropping that looks at the labels.

use crate::dataset::Sample;
use grasp_models::preprocess::{resample_planar, ImageTransform};
use rand::Rng;

/// Training-time view augmentation: random zoom, shift and rotation of the crop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    /// Zoom range, drawn log-uniformly: 1.0 is the full centre crop, 1.25 shows 80 % of it, 0.6
    /// shows the crop at 60 % of its size inside replicated borders (a camera 1/0.6 times as high).
    pub min_zoom: f32,
    /// Upper end of the zoom range.
    pub max_zoom: f32,
    /// Shift of the crop centre, as a fraction of the crop side.
    pub max_shift: f32,
    /// Random rotation over the full circle.
    pub rotate: bool,
}

impl Default for Augment {
    fn default() -> Self {
        Augment { min_zoom: DEFAULT_ZOOM.0, max_zoom: DEFAULT_ZOOM.1, max_shift: 0.1, rotate: true }
    }
}

/// The paper's random zoom (GG-CNN's trainer): up to 1.25, never out.
pub const DEFAULT_ZOOM: (f32, f32) = (1.0, 1.25);

impl Augment {
    /// No augmentation: the plain centre crop.
    pub const NONE: Augment = Augment { min_zoom: 1.0, max_zoom: 1.0, max_shift: 0.0, rotate: false };

    /// The default augmentation with the zoom range `(min, max)`.
    pub fn with_zoom((min_zoom, max_zoom): (f32, f32)) -> Self {
        Augment { min_zoom, max_zoom, ..Augment::default() }
    }

    /// The geometric centre of the zoom range: the scale a model trained with it is centred on.
    pub fn zoom_centre(&self) -> f32 {
        (self.min_zoom * self.max_zoom).sqrt()
    }

    /// A random view of a `width × height` image as a `size²` input.
    pub fn random_view(&self, rng: &mut impl Rng, width: usize, height: usize, size: usize) -> ImageTransform {
        let mut t = ImageTransform::center_crop(width, height, size);
        let side = width.min(height) as f32;
        if self.max_zoom > self.min_zoom {
            t.scale *= rng.gen_range(self.min_zoom.ln()..self.max_zoom.ln()).exp();
        }
        if self.max_shift > 0.0 {
            t.src_center.0 += rng.gen_range(-self.max_shift..self.max_shift) * side;
            t.src_center.1 += rng.gen_range(-self.max_shift..self.max_shift) * side;
        }
        if self.rotate {
            t.rotation = rng.gen_range(-std::f32::consts::PI..std::f32::consts::PI);
        }
        t
    }
}

/// The sample's centred square, rescaled about its centre by `factor` (0.7: objects look 0.7 times
/// as large, as from a camera 1/0.7 times as high; the border is replicated), at the same side:
/// the scale-robustness test of a centre-crop model. Labels, depth and mask follow.
pub fn rescaled_about_centre(sample: &Sample, factor: f32) -> Sample {
    let side = sample.width.min(sample.height);
    let mut t = ImageTransform::center_crop(sample.width, sample.height, side);
    t.scale *= factor;
    let plane = |src: &[f32]| {
        let mut out = Vec::new();
        resample_planar(&t, src, sample.width, sample.height, 1, side, &mut out, |v| v)
            .expect("loader checked the size");
        out
    };
    let mut planar = Vec::new();
    resample_planar(&t, &sample.rgb, sample.width, sample.height, 3, side, &mut planar, f32::from)
        .expect("loader checked the image size");
    let n = side * side;
    let rgb = (0..3 * n).map(|i| planar[(i % 3) * n + i / 3].round().clamp(0.0, 255.0) as u8).collect();
    Sample {
        width: side,
        height: side,
        rgb,
        rects: sample.rects.iter().map(|r| t.rect_to_output(r)).collect(),
        depth: sample.depth.as_deref().map(plane),
        mask: sample.mask.as_deref().map(plane),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn no_augmentation_is_the_centre_crop() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        assert_eq!(Augment::NONE.random_view(&mut rng, 640, 480, 300), ImageTransform::center_crop(640, 480, 300));
        let v = Augment::default().random_view(&mut rng, 640, 480, 300);
        let base = ImageTransform::center_crop(640, 480, 300);
        assert!(v.scale >= base.scale && v.scale <= base.scale * 1.25);
        assert!((v.src_center.0 - base.src_center.0).abs() <= 48.0);
    }

    #[test]
    fn a_wide_zoom_range_is_drawn_log_uniformly_and_covers_both_ends() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let a = Augment::with_zoom((0.6, 1.7));
        let base = ImageTransform::center_crop(224, 224, 300).scale;
        let zooms: Vec<f32> = (0..4000).map(|_| a.random_view(&mut rng, 224, 224, 300).scale / base).collect();
        assert!(zooms.iter().all(|&z| (0.6..=1.7).contains(&z)), "{zooms:?}");
        // Log-uniform: half the draws below the geometric centre √(0.6·1.7) ≈ 1.01, and about a
        // quarter in each end's first quarter of log-range.
        let below = zooms.iter().filter(|&&z| z < a.zoom_centre()).count();
        assert!((1850..2150).contains(&below), "{below}");
        let q = (1.7f32 / 0.6).ln() / 4.0;
        let low = zooms.iter().filter(|&&z| z < 0.6 * q.exp()).count();
        let high = zooms.iter().filter(|&&z| z > 1.7 / q.exp()).count();
        assert!((850..1150).contains(&low) && (850..1150).contains(&high), "{low} {high}");
        assert!((a.zoom_centre() - 1.00995).abs() < 1e-4);
    }

    #[test]
    fn rescaling_about_the_centre_moves_pixels_and_labels_together() {
        use grasp_models::metric::GraspRect;
        // 40×30 image (its centred 30² square is centred on (19.5, 14.5)), one bright pixel at
        // (27, 15) and a label there, 10 px long.
        let (w, h) = (40, 30);
        let mut rgb = vec![0u8; w * h * 3];
        rgb[(15 * w + 27) * 3..(15 * w + 27) * 3 + 3].copy_from_slice(&[255, 128, 0]);
        let rect = GraspRect { cx: 27.0, cy: 15.0, angle: 0.3, length: 10.0, jaw: 4.0 };
        let s = Sample { width: w, height: h, rgb, rects: vec![rect], depth: None, mask: Some(vec![1.0; w * h]) };
        let r = rescaled_about_centre(&s, 0.5);
        assert_eq!((r.width, r.height), (30, 30));
        // The square's centre is (14.5, 14.5) in it; the pixel was 7.5 px right and 0.5 below the
        // source centre (19.5, 14.5), so at half scale it lands at (18.25, 14.75).
        let l = &r.rects[0];
        assert!((l.cx - 18.25).abs() < 1e-4 && (l.cy - 14.75).abs() < 1e-4, "{l:?}");
        assert!((l.length - 5.0).abs() < 1e-6 && (l.jaw - 2.0).abs() < 1e-6 && (l.angle - 0.3).abs() < 1e-6);
        // The brightest pixel of the red channel is next to the label's centre.
        let (i, _) = (0..900).map(|i| (i, r.rgb[i * 3])).max_by_key(|&(_, v)| v).unwrap();
        assert!(((i % 30) as f64 - l.cx).abs() <= 1.0 && ((i / 30) as f64 - l.cy).abs() <= 1.0, "{i}");
        assert_eq!(r.mask.as_ref().unwrap().len(), 900);
        // Factor 1 keeps the centred square as it is.
        let same = rescaled_about_centre(&s, 1.0);
        assert_eq!(same.rgb[(15 * 30 + 22) * 3], 255);
    }
}
