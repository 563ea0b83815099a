//! Turning an image buffer into the network input exactly as a model's metadata says, and mapping
//! grasps between the input and the original image.
//!
//! Geometry is one similarity transform ([`ImageTransform`]: scale, rotation, translation) used by
//! both the edge binary (a plain centre crop) and training augmentation (crop, zoom, rotation), so
//! images and their labels always move together.
//!
//! `center_crop`: the largest centred square is resized bilinearly (pixel centres aligned, as
//! OpenCV's `INTER_LINEAR`) to S×S; `div255_sub_image_mean`: values / 255, then the mean of all
//! S×S×3 values is subtracted. Resize and normalisation are fused and write into a caller-owned
//! buffer, so the edge loop's only per-frame allocations here are the small tap tables (a few KB).

use crate::contract::{ImageFit, ModelInfo, Normalisation};
use crate::decode::{wrap_half_turn, Grasp};
use crate::metric::GraspRect;

/// Output (network input) pixel q ↔ source image pixel p:
/// q = out_center + scale · R(rotation) · (p − src_center), where R rotates counter-clockwise on
/// screen (pixel y down) and `scale` is output pixels per source pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageTransform {
    /// Output pixels per source pixel.
    pub scale: f32,
    /// Counter-clockwise on screen, radians.
    pub rotation: f32,
    /// The source point mapped to `out_center`.
    pub src_center: (f32, f32),
    /// Centre of the output, pixels.
    pub out_center: (f32, f32),
}

impl ImageTransform {
    /// The largest centred square of a `width × height` image onto `size × size` pixels.
    pub fn center_crop(width: usize, height: usize, size: usize) -> Self {
        let side = width.min(height) as f32;
        ImageTransform {
            scale: size as f32 / side,
            rotation: 0.0,
            src_center: (width as f32 / 2.0 - 0.5, height as f32 / 2.0 - 0.5),
            out_center: (size as f32 / 2.0 - 0.5, size as f32 / 2.0 - 0.5),
        }
    }

    /// Rotates a pixel-space vector counter-clockwise on screen by `a`.
    fn rotate(a: f32, (dx, dy): (f32, f32)) -> (f32, f32) {
        let (s, c) = a.sin_cos();
        (c * dx + s * dy, -s * dx + c * dy)
    }

    /// Source pixel → output pixel.
    pub fn to_output(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) = Self::rotate(self.rotation, (x - self.src_center.0, y - self.src_center.1));
        (self.out_center.0 + self.scale * dx, self.out_center.1 + self.scale * dy)
    }

    /// Output pixel → source pixel.
    pub fn to_source(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) =
            Self::rotate(-self.rotation, ((x - self.out_center.0) / self.scale, (y - self.out_center.1) / self.scale));
        (self.src_center.0 + dx, self.src_center.1 + dy)
    }

    /// A grasp found in output pixels, in source pixels.
    pub fn grasp_to_source(&self, g: &Grasp) -> Grasp {
        let (x, y) = self.to_source(g.x, g.y);
        Grasp { x, y, angle: wrap_half_turn(g.angle - self.rotation), width: g.width / self.scale, quality: g.quality }
    }

    /// A ground-truth rectangle in source pixels, in output pixels.
    pub fn rect_to_output(&self, r: &GraspRect) -> GraspRect {
        let (cx, cy) = self.to_output(r.cx as f32, r.cy as f32);
        GraspRect {
            cx: cx as f64,
            cy: cy as f64,
            angle: wrap_half_turn((r.angle + self.rotation as f64) as f32) as f64,
            length: r.length * self.scale as f64,
            jaw: r.jaw * self.scale as f64,
        }
    }
}

/// Why an image could not be preprocessed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PreprocessError {
    /// The buffer does not hold `width × height × channels` values.
    #[error("image buffer has {got} bytes, expected {width}×{height}×{channels} = {}", width * height * channels)]
    BufferSize {
        /// Pixels per row.
        width: usize,
        /// Rows.
        height: usize,
        /// Channels.
        channels: usize,
        /// Values given.
        got: usize,
    },
    /// A `table_view` model was given a camera image instead of its S×S table view.
    #[error("this model takes the {size}×{size} table view (grasp.image_fit = table_view), not a {width}×{height} image: give it the camera's calibration (grasp-edge: [calibration]; detect: --calibration)")]
    NotTableView {
        /// Pixels per row given.
        width: usize,
        /// Rows given.
        height: usize,
        /// The model's input size S.
        size: usize,
    },
    /// A zero-sized image.
    #[error("image is empty ({width}×{height})")]
    Empty {
        /// Pixels per row.
        width: usize,
        /// Rows.
        height: usize,
    },
}

fn check(len: usize, width: usize, height: usize, channels: usize) -> Result<(), PreprocessError> {
    if width == 0 || height == 0 {
        return Err(PreprocessError::Empty { width, height });
    }
    if len != width * height * channels {
        return Err(PreprocessError::BufferSize { width, height, channels, got: len });
    }
    Ok(())
}

/// Resamples an interleaved `channels`-channel image through `t` into planar `out`
/// (`channels × size × size`), bilinear, borders clamped; `f` converts each source value.
/// Without rotation (the runtime's centre crop and every evaluation view) the sampling is
/// separable and runs row by row ([`resample_axis_aligned`]), equal to the general path within rounding.
#[allow(clippy::too_many_arguments)] // (buffer, width, height, channels) is how every image here travels
#[inline(always)]
pub fn resample_planar<T: Copy>(
    t: &ImageTransform,
    src: &[T],
    width: usize,
    height: usize,
    channels: usize,
    size: usize,
    out: &mut Vec<f32>,
    f: impl Fn(T) -> f32,
) -> Result<(), PreprocessError> {
    check(src.len(), width, height, channels)?;
    out.resize(channels * size * size, 0.0);
    if t.rotation == 0.0 {
        resample_axis_aligned(t, src, width, height, channels, size, out, f);
    } else {
        resample_any(t, src, width, height, channels, size, out, f);
    }
    Ok(())
}

/// The general path: every output pixel through [`ImageTransform::to_source`].
#[allow(clippy::too_many_arguments)]
fn resample_any<T: Copy>(
    t: &ImageTransform,
    src: &[T],
    width: usize,
    height: usize,
    channels: usize,
    size: usize,
    out: &mut [f32],
    f: impl Fn(T) -> f32,
) {
    let plane = size * size;
    let (xmax, ymax) = ((width - 1) as f32, (height - 1) as f32);
    for oy in 0..size {
        for ox in 0..size {
            let (sx, sy) = t.to_source(ox as f32, oy as f32);
            let (sx, sy) = (sx.clamp(0.0, xmax), sy.clamp(0.0, ymax));
            let (x0, y0) = (sx as usize, sy as usize);
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            let (x1, y1) = ((x0 + 1).min(width - 1), (y0 + 1).min(height - 1));
            for c in 0..channels {
                let px = |x: usize, y: usize| f(src[(y * width + x) * channels + c]);
                let top = px(x0, y0) + (px(x1, y0) - px(x0, y0)) * fx;
                let bottom = px(x0, y1) + (px(x1, y1) - px(x0, y1)) * fx;
                out[c * plane + oy * size + ox] = top + (bottom - top) * fy;
            }
        }
    }
}

/// Bilinear taps along one axis without rotation: for each output index, the two source indices
/// and the second one's weight, computed exactly as [`ImageTransform::to_source`] does (with no
/// rotation its x depends on the output x alone, its y on the output y alone).
fn axis_taps(n: usize, out_center: f32, scale: f32, src_center: f32, last: usize) -> Vec<(usize, usize, f32)> {
    (0..n)
        .map(|o| {
            let s = (src_center + (o as f32 - out_center) / scale).clamp(0.0, last as f32);
            let i0 = s as usize;
            (i0, (i0 + 1).min(last), s - i0 as f32)
        })
        .collect()
}

/// The separable path, vertical pass first: for each output row the two source rows it falls
/// between are blended once over the columns the taps read (contiguous, so it vectorises), then
/// each output pixel interpolates that one blended row along x: half the gathers of interpolating
/// both source rows along x. The same bilinear function as [`resample_any`], summed in another
/// order (equal within rounding; tested).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn resample_axis_aligned<T: Copy>(
    t: &ImageTransform,
    src: &[T],
    width: usize,
    height: usize,
    channels: usize,
    size: usize,
    out: &mut [f32],
    f: impl Fn(T) -> f32,
) {
    let plane = size * size;
    let mut taps = axis_taps(size, t.out_center.0, t.scale, t.src_center.0, width - 1);
    let ys = axis_taps(size, t.out_center.1, t.scale, t.src_center.1, height - 1);
    // The source columns any tap reads (taps are monotonic in the output index).
    let (first, last) = match (taps.first(), taps.last()) {
        (Some(a), Some(b)) => (a.0.min(b.0), a.1.max(b.1)),
        _ => return,
    };
    let row_len = width * channels;
    let (lo, hi) = (first * channels, (last + 1) * channels);
    // Each output column's two taps, from here on as offsets into the blended row.
    for (x0, x1, _) in taps.iter_mut() {
        (*x0, *x1) = ((*x0 - first) * channels, (*x1 - first) * channels);
    }
    let mut blended = vec![0.0f32; hi - lo];
    for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
        let (r0, r1) = (&src[y0 * row_len + lo..y0 * row_len + hi], &src[y1 * row_len + lo..y1 * row_len + hi]);
        for ((d, &a), &b) in blended.iter_mut().zip(r0).zip(r1) {
            let (a, b) = (f(a), f(b));
            *d = a + (b - a) * fy;
        }
        let row = oy * size..(oy + 1) * size;
        if channels == 3 {
            // All three channels of a pixel from its two neighbouring blended pixels at once.
            let (p0, rest) = out.split_at_mut(plane);
            let (p1, p2) = rest.split_at_mut(plane);
            let dst = p0[row.clone()].iter_mut().zip(&mut p1[row.clone()]).zip(&mut p2[row]);
            for (((d0, d1), d2), &(a, b, fx)) in dst.zip(&taps) {
                let (a, b) = (&blended[a..a + 3], &blended[b..b + 3]);
                *d0 = a[0] + (b[0] - a[0]) * fx;
                *d1 = a[1] + (b[1] - a[1]) * fx;
                *d2 = a[2] + (b[2] - a[2]) * fx;
            }
        } else {
            for c in 0..channels {
                let dst = &mut out[c * plane + row.start..c * plane + row.end];
                for (d, &(a, b, fx)) in dst.iter_mut().zip(&taps) {
                    let (a, b) = (blended[a + c], blended[b + c]);
                    *d = a + (b - a) * fx;
                }
            }
        }
    }
}

/// Applies the model's normalisation in place to a planar RGB input with values in [0, 255].
#[inline(always)]
pub fn normalise(info: &ModelInfo, input: &mut [f32]) {
    match info.normalisation {
        Normalisation::Div255SubImageMean => {
            // Eight running sums, so the loop vectorises (one f64 chain would serialise it).
            let mut lanes = [0.0f64; 8];
            let chunks = input.chunks_exact(8);
            let tail: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
            for chunk in chunks {
                lanes.iter_mut().zip(chunk).for_each(|(l, &v)| *l += v as f64);
            }
            let mean = (lanes.iter().sum::<f64>() + tail) / input.len().max(1) as f64 / 255.0;
            let mean = mean as f32;
            input.iter_mut().for_each(|v| *v = *v / 255.0 - mean);
        }
    }
}

/// Writes the NCHW float input for `info` from a packed RGB8 image; returns the transform from the
/// image to the input.
pub fn preprocess_rgb8(
    info: &ModelInfo,
    rgb: &[u8],
    width: usize,
    height: usize,
    out: &mut Vec<f32>,
) -> Result<ImageTransform, PreprocessError> {
    check(rgb.len(), width, height, 3)?;
    let t = match info.image_fit {
        ImageFit::CenterCrop => ImageTransform::center_crop(width, height, info.input_size),
        // The runtime warped the table view already: the image is the input, pixel for pixel.
        ImageFit::TableView if (width, height) == (info.input_size, info.input_size) => {
            ImageTransform::center_crop(width, height, info.input_size)
        }
        ImageFit::TableView => {
            return Err(PreprocessError::NotTableView { width, height, size: info.input_size });
        }
    };
    // The same code with 8-lane vectors where the CPU has them (the portable x86-64 build has 4);
    // Rust never fuses a multiply and an add, so both give the same bits.
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present (checked on the line above).
        unsafe { input_from_rgb8_avx2(info, &t, rgb, width, height, out)? };
        return Ok(t);
    }
    input_from_rgb8(info, &t, rgb, width, height, out)?;
    Ok(t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn input_from_rgb8_avx2(
    info: &ModelInfo,
    t: &ImageTransform,
    rgb: &[u8],
    width: usize,
    height: usize,
    out: &mut Vec<f32>,
) -> Result<(), PreprocessError> {
    input_from_rgb8(info, t, rgb, width, height, out)
}

#[inline(always)]
fn input_from_rgb8(
    info: &ModelInfo,
    t: &ImageTransform,
    rgb: &[u8],
    width: usize,
    height: usize,
    out: &mut Vec<f32>,
) -> Result<(), PreprocessError> {
    resample_planar(t, rgb, width, height, 3, info.input_size, out, |v| v as f32)?;
    normalise(info, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::ArchKind;
    use proptest::prelude::*;

    proptest! {
        /// The separable path gives the general path's values (within rounding: the same bilinear
        /// weights summed in another order), for crops, zooms and shifts beyond the borders, one
        /// and three channels.
        #[test]
        fn axis_aligned_resampling_is_the_general_path(
            w in 1usize..40, h in 1usize..40, size in 1usize..24, channels in prop_oneof![Just(1usize), Just(3usize)],
            zoom in 0.3f32..3.0, sx in -0.3f32..0.3, sy in -0.3f32..0.3, seed in 0u32..1000,
        ) {
            let src: Vec<u8> = (0..w * h * channels).map(|i| ((i as u32).wrapping_mul(2654435761) ^ seed) as u8).collect();
            let mut t = ImageTransform::center_crop(w, h, size);
            t.scale *= zoom;
            t.src_center.0 += sx * w as f32;
            t.src_center.1 += sy * h as f32;
            let (mut fast, mut general) = (vec![0.0; channels * size * size], vec![0.0; channels * size * size]);
            resample_axis_aligned(&t, &src, w, h, channels, size, &mut fast, f32::from);
            resample_any(&t, &src, w, h, channels, size, &mut general, f32::from);
            let worst = fast.iter().zip(&general).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            prop_assert!(worst <= 1e-3, "off by {} (values 0..255)", worst);
        }
    }

    #[test]
    fn the_vector_build_preprocesses_to_the_same_bits() {
        let info = ModelInfo::new(ArchKind::GgCnn, None, 224);
        for (w, h) in [(480, 480), (640, 480), (225, 300), (97, 61)] {
            let rgb: Vec<u8> = (0..w * h * 3).map(|i| ((i * 2654435761usize) >> 13) as u8).collect();
            let t = ImageTransform::center_crop(w, h, 224);
            let mut portable = Vec::new();
            input_from_rgb8(&info, &t, &rgb, w, h, &mut portable).unwrap();
            let mut dispatched = Vec::new();
            assert_eq!(preprocess_rgb8(&info, &rgb, w, h, &mut dispatched).unwrap(), t);
            assert_eq!(dispatched, portable, "{w}x{h}");
        }
    }

    #[test]
    fn center_crop_geometry() {
        let t = ImageTransform::center_crop(640, 480, 300);
        // Input centre ↔ image centre; input corners ↔ the crop's corners (80, 0) and (560, 480).
        let (x, y) = t.to_source(149.5, 149.5);
        assert!((x - 319.5).abs() < 1e-3 && (y - 239.5).abs() < 1e-3, "{x} {y}");
        let (x, y) = t.to_source(-0.5, -0.5);
        assert!((x - 79.5).abs() < 1e-3 && (y + 0.5).abs() < 1e-3, "{x} {y}");
        let g = t.grasp_to_source(&Grasp { x: 0.0, y: 0.0, angle: 0.4, width: 10.0, quality: 0.9 });
        assert!((g.width - 16.0).abs() < 1e-4 && (g.angle - 0.4).abs() < 1e-6);
    }

    #[test]
    fn rotation_is_counter_clockwise_on_screen() {
        let t = ImageTransform {
            scale: 1.0,
            rotation: std::f32::consts::FRAC_PI_2,
            src_center: (0.0, 0.0),
            out_center: (0.0, 0.0),
        };
        // A point to the right of the centre ends up above it (smaller y) after +90°.
        let (x, y) = t.to_output(10.0, 0.0);
        assert!(x.abs() < 1e-5 && (y + 10.0).abs() < 1e-5, "{x} {y}");
    }

    proptest! {
        /// Labels move with the image: transforming a rectangle equals transforming its corners.
        #[test]
        fn rectangles_round_trip_through_the_transform(
            scale in 0.3f32..3.0, rotation in -3.2f32..3.2, sx in 0f32..500.0, sy in 0f32..500.0,
            cx in 0f64..400.0, cy in 0f64..400.0, angle in -1.5f64..1.5, length in 5f64..100.0, jaw in 3f64..50.0,
        ) {
            let t = ImageTransform { scale, rotation, src_center: (sx, sy), out_center: (150.0, 150.0) };
            let r = GraspRect { cx, cy, angle, length, jaw };
            let moved = t.rect_to_output(&r);
            let corners = r.corners().map(|(x, y)| { let (u, v) = t.to_output(x as f32, y as f32); (u as f64, v as f64) });
            let from_corners = GraspRect::from_corners(corners);
            prop_assert!((moved.cx - from_corners.cx).abs() < 1e-2 && (moved.cy - from_corners.cy).abs() < 1e-2);
            prop_assert!(crate::metric::angle_difference(moved.angle, from_corners.angle) < 1e-4);
            prop_assert!((moved.length - from_corners.length).abs() < 1e-2 * length.max(1.0));
            prop_assert!((moved.jaw - from_corners.jaw).abs() < 1e-2 * jaw.max(1.0));
            let (bx, by) = t.to_source(t.to_output(cx as f32, cy as f32).0, t.to_output(cx as f32, cy as f32).1);
            prop_assert!((bx as f64 - cx).abs() < 1e-2 && (by as f64 - cy).abs() < 1e-2);
            // And back: a grasp at the moved rectangle maps to the original.
            let g = Grasp { x: moved.cx as f32, y: moved.cy as f32, angle: moved.angle as f32, width: moved.length as f32, quality: 1.0 };
            let back = t.grasp_to_source(&g);
            prop_assert!(crate::metric::angle_difference(back.angle as f64, angle) < 1e-4);
            prop_assert!((back.width as f64 - length).abs() < 1e-2 * length);
        }
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
        let t = preprocess_rgb8(&info, &img, w, h, &mut out).unwrap();
        assert!((t.to_source(0.0, 0.0).0 - 4.0).abs() < 1e-5);
        assert_eq!(out.len(), 3 * 64);
        let mean: f32 = out.iter().sum::<f32>() / out.len() as f32;
        assert!(mean.abs() < 1e-6);
        // Input column 0 is black (−0.5 after removing the 0.5 mean), column 7 white (+0.5).
        assert!((out[0] + 0.5).abs() < 1e-6 && (out[7] - 0.5).abs() < 1e-6, "{:?}", &out[..8]);
        assert!(matches!(preprocess_rgb8(&info, &img[1..], w, h, &mut out), Err(PreprocessError::BufferSize { .. })));
        assert!(matches!(preprocess_rgb8(&info, &[], 0, 5, &mut out), Err(PreprocessError::Empty { .. })));
    }
}
