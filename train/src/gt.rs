//! Ground-truth maps exactly as the paper's §III-D, and the training/validation view of a sample.
//!
//! Q = 1 on the centre third of each rectangle (the middle third along the opening, full jaw
//! size, as GG-CNN's `compact_polygon_coords`), 0 elsewhere; cos 2Φ, sin 2Φ and W = opening/150
//! (clipped to [0, 1]) on the same pixels, 0 elsewhere. Overlapping rectangles: the later rectangle
//! in the annotation file wins on the pixels they share (GG-CNN's order), Q stays 1.
//! A = perfect depth min–max normalised to [0, 1] over the view, or the object mask.

use crate::dataset::Sample;
use grasp_models::arch::AuxTask;
use grasp_models::contract::ModelInfo;
use grasp_models::metric::GraspRect;
use grasp_models::preprocess::{normalise, resample_planar, ImageTransform};

/// Network input and targets for one view of one sample, all `size × size` planes.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Normalised network input, 3 planes.
    pub input: Vec<f32>,
    /// Grasp quality target.
    pub q: Vec<f32>,
    /// cos 2Φ target.
    pub cos: Vec<f32>,
    /// sin 2Φ target.
    pub sin: Vec<f32>,
    /// Width target, 0..1.
    pub width: Vec<f32>,
    /// None when the sample has no target for the requested auxiliary task.
    pub aux: Option<Vec<f32>>,
    /// Ground-truth rectangles in the view's pixels (for the success metric).
    pub rects: Vec<GraspRect>,
}

/// Where a rectangle sets Q = 1 (and the angle and width targets): its centre third along the
/// opening, full jaw size.
pub fn q_target_region(r: &GraspRect) -> GraspRect {
    GraspRect { length: r.length / 3.0, ..*r }
}

/// Rasterises the grasp maps of `rects` (already in output pixels).
pub fn grasp_maps(rects: &[GraspRect], size: usize, width_scale: f32) -> [Vec<f32>; 4] {
    let n = size * size;
    let (mut q, mut cos, mut sin, mut width) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for r in rects {
        let centre_third = q_target_region(r);
        let c = centre_third.corners();
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for p in &c {
            x0 = x0.min(p.0);
            y0 = y0.min(p.1);
            x1 = x1.max(p.0);
            y1 = y1.max(p.1);
        }
        let orientation = (0..4).map(|i| c[i].0 * c[(i + 1) % 4].1 - c[(i + 1) % 4].0 * c[i].1).sum::<f64>().signum();
        let (a2_cos, a2_sin) = ((2.0 * r.angle).cos() as f32, (2.0 * r.angle).sin() as f32);
        let w = (r.length as f32 / width_scale).clamp(0.0, 1.0);
        let (ylo, yhi) = (y0.ceil().max(0.0) as usize, (y1.floor().min(size as f64 - 1.0)).max(-1.0));
        let (xlo, xhi) = (x0.ceil().max(0.0) as usize, (x1.floor().min(size as f64 - 1.0)).max(-1.0));
        if yhi < 0.0 || xhi < 0.0 {
            continue;
        }
        for y in ylo..=yhi as usize {
            for x in xlo..=xhi as usize {
                let (px, py) = (x as f64, y as f64);
                let inside = (0..4).all(|i| {
                    let (a, b) = (c[i], c[(i + 1) % 4]);
                    orientation * ((b.0 - a.0) * (py - a.1) - (b.1 - a.1) * (px - a.0)) >= 0.0
                });
                if inside {
                    let i = y * size + x;
                    q[i] = 1.0;
                    cos[i] = a2_cos;
                    sin[i] = a2_sin;
                    width[i] = w;
                }
            }
        }
    }
    [q, cos, sin, width]
}

/// The view of `sample` through `t`: normalised input, grasp maps, auxiliary target.
pub fn prepare(sample: &Sample, t: &ImageTransform, info: &ModelInfo, aux: Option<AuxTask>) -> Prepared {
    let size = info.input_size;
    let mut input = Vec::new();
    resample_planar(t, &sample.rgb, sample.width, sample.height, 3, size, &mut input, |v| v as f32)
        .expect("loader checked the image size");
    normalise(info, &mut input);
    let rects: Vec<GraspRect> = sample.rects.iter().map(|r| t.rect_to_output(r)).collect();
    let [q, cos, sin, width] = grasp_maps(&rects, size, info.decode.width_scale);
    let aux = match aux {
        Some(AuxTask::Depth) => sample.depth.as_ref().map(|d| {
            let mut a = Vec::new();
            resample_planar(t, d, sample.width, sample.height, 1, size, &mut a, |v| v)
                .expect("loader checked the depth size");
            let (lo, hi) = a.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let range = (hi - lo).max(1e-6);
            a.iter_mut().for_each(|v| *v = (*v - lo) / range);
            a
        }),
        Some(AuxTask::Mask) => sample.mask.as_ref().map(|m| {
            let mut a = Vec::new();
            resample_planar(t, m, sample.width, sample.height, 1, size, &mut a, |v| v)
                .expect("loader checked the mask size");
            a
        }),
        None => None,
    };
    Prepared { input, q, cos, sin, width, aux, rects }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centre_third_of_an_axis_aligned_rectangle() {
        // Opening 30 px along x centred at (20, 10), jaw 6 px: the centre third is x ∈ [15, 25],
        // y ∈ [7, 13].
        let r = GraspRect { cx: 20.0, cy: 10.0, angle: 0.0, length: 30.0, jaw: 6.0 };
        let [q, cos, sin, w] = grasp_maps(&[r], 40, 150.0);
        let ones: Vec<(usize, usize)> = (0..1600).filter(|&i| q[i] == 1.0).map(|i| (i % 40, i / 40)).collect();
        assert_eq!(ones.len(), 11 * 7);
        assert!(ones.iter().all(|&(x, y)| (15..=25).contains(&x) && (7..=13).contains(&y)));
        let i = 10 * 40 + 20;
        assert_eq!((cos[i], sin[i]), (1.0, 0.0));
        assert!((w[i] - 0.2).abs() < 1e-6);
        assert_eq!((q[0], cos[0], w[0]), (0.0, 0.0, 0.0));
    }

    #[test]
    fn angles_widths_and_overlap() {
        let a = GraspRect { cx: 20.0, cy: 20.0, angle: std::f64::consts::FRAC_PI_4, length: 30.0, jaw: 10.0 };
        let b = GraspRect { cx: 20.0, cy: 20.0, angle: -std::f64::consts::FRAC_PI_4, length: 300.0, jaw: 10.0 };
        let [_, cos, sin, w] = grasp_maps(&[a], 40, 150.0);
        let i = 20 * 40 + 20;
        assert!(cos[i].abs() < 1e-6 && (sin[i] - 1.0).abs() < 1e-6, "sin 2Φ = 1 at 45°");
        assert!((w[i] - 0.2).abs() < 1e-6);
        let [q, _, sin, w] = grasp_maps(&[a, b], 40, 150.0);
        assert_eq!(q[i], 1.0);
        assert!((sin[i] + 1.0).abs() < 1e-6, "the later rectangle wins on shared pixels");
        assert_eq!(w[i], 1.0, "W is clipped to 1");
    }
}
