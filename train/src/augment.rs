//! Training augmentation (paper: random crop and zoom; plus rotation) as one random similarity
//! transform per sample, applied to the image, its maps and its labels alike
//! ([`grasp_models::preprocess::ImageTransform`]). Validation and test views are the plain centre
//! crop the edge binary uses: no augmentation, and no cropping that looks at the labels.

use grasp_models::preprocess::ImageTransform;
use rand::Rng;

/// Training-time view augmentation: random zoom, shift and rotation of the crop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    /// Zoom range: 1.0 is the full centre crop, 1.25 shows 80 % of it.
    pub max_zoom: f32,
    /// Shift of the crop centre, as a fraction of the crop side.
    pub max_shift: f32,
    /// Random rotation over the full circle.
    pub rotate: bool,
}

impl Default for Augment {
    fn default() -> Self {
        Augment { max_zoom: 1.25, max_shift: 0.1, rotate: true }
    }
}

impl Augment {
    /// No augmentation: the plain centre crop.
    pub const NONE: Augment = Augment { max_zoom: 1.0, max_shift: 0.0, rotate: false };

    /// A random view of a `width × height` image as a `size²` input.
    pub fn random_view(&self, rng: &mut impl Rng, width: usize, height: usize, size: usize) -> ImageTransform {
        let mut t = ImageTransform::center_crop(width, height, size);
        let side = width.min(height) as f32;
        if self.max_zoom > 1.0 {
            t.scale *= rng.gen_range(1.0..self.max_zoom);
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
}
