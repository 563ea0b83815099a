//! Decoding the network's maps into grasps, shared by training's evaluation and the edge binary.
//!
//! Conventions, fixed here once for the whole project: pixel x right, y down; a grasp angle Φ is
//! in radians in (−π/2, π/2], counter-clockwise as seen on screen, so the gripper opens along
//! (cos Φ, −sin Φ) in pixel coordinates. A Jacquard file's θ° is −Φ.
//!
//! Steps: Gaussian smoothing of Q and width, and of cos 2Φ and sin 2Φ *before* atan2 (smoothing the
//! angle itself would average −89° and +89° into 0°); Φ = atan2(sin, cos)/2; width × scale; then
//! either the paper's single argmax or top-k local maxima with a minimum distance and a threshold.

use std::f32::consts::FRAC_PI_2;

/// Decoding parameters. Defaults: the paper's σ = 5 px smoothing, GG-CNN's peak finding
/// (min distance 20 px, Q ≥ 0.2) and the paper's 150 px width scale.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeParams {
    /// Gaussian σ smoothing Q, pixels.
    pub q_sigma: f32,
    /// Gaussian σ smoothing the angle maps, pixels.
    pub angle_sigma: f32,
    /// Gaussian σ smoothing the width map, pixels.
    pub width_sigma: f32,
    /// Network width output (0..1) × this = opening in input pixels.
    pub width_scale: f32,
    /// Two reported peaks are more than this many pixels apart (Chebyshev distance).
    pub peak_min_distance: usize,
    /// Peaks with smoothed Q below this are not grasps (local-maxima mode only).
    pub peak_threshold: f32,
    /// How peaks are chosen.
    pub mode: PeakMode,
}

impl Default for DecodeParams {
    fn default() -> Self {
        DecodeParams {
            q_sigma: 5.0,
            angle_sigma: 5.0,
            width_sigma: 5.0,
            width_scale: crate::layout::DEFAULT_WIDTH_SCALE_PX,
            peak_min_distance: 20,
            peak_threshold: 0.2,
            mode: PeakMode::LocalMaxima,
        }
    }
}

/// How grasps are picked from the Q map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeakMode {
    /// Top-k local maxima of smoothed Q at least `peak_min_distance` apart, Q ≥ threshold.
    LocalMaxima,
    /// The paper's evaluation: the single highest pixel of smoothed Q, whatever its value.
    Argmax,
}

/// The four grasp maps (and the optional auxiliary map) of one image, row-major, `size × size`.
#[derive(Debug, Clone, PartialEq)]
pub struct GraspMaps {
    /// Side of every map, pixels.
    pub size: usize,
    /// Grasp quality, 0..1.
    pub q: Vec<f32>,
    /// cos 2Φ.
    pub cos: Vec<f32>,
    /// sin 2Φ.
    pub sin: Vec<f32>,
    /// Opening, 0..1 (× width scale = pixels).
    pub width: Vec<f32>,
    /// The auxiliary output (depth or saliency), if exported.
    pub aux: Option<Vec<f32>>,
}

impl GraspMaps {
    /// How many values of the grasp maps are NaN or infinite.
    pub fn count_non_finite(&self) -> usize {
        // NaN and ±∞ are the values whose exponent bits are all ones. Tested on the bits and
        // summed in u32 lanes, this vectorises; `filter(!is_finite).count()` took 0.21 ms on the
        // four 224² maps after each inference, as long as the smoothing of Q.
        const EXPONENT: u32 = 0x7f80_0000;
        let count = |m: &[f32]| m.iter().map(|v| u32::from(v.to_bits() & EXPONENT == EXPONENT)).sum::<u32>() as usize;
        [&self.q, &self.cos, &self.sin, &self.width].iter().map(|m| count(m)).sum()
    }

    /// Maps of `size²` zeros.
    pub fn zeros(size: usize, with_aux: bool) -> Self {
        let z = vec![0.0; size * size];
        GraspMaps { size, q: z.clone(), cos: z.clone(), sin: z.clone(), width: z.clone(), aux: with_aux.then_some(z) }
    }
}

/// One grasp in pixel coordinates of the map (or, after [`crate::preprocess::ImageMapping`], of
/// the original image).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grasp {
    /// Centre column, pixels.
    pub x: f32,
    /// Centre row, pixels.
    pub y: f32,
    /// Radians in (−π/2, π/2], counter-clockwise on screen.
    pub angle: f32,
    /// Gripper opening in pixels.
    pub width: f32,
    /// Smoothed Q at the grasp centre.
    pub quality: f32,
}

impl Grasp {
    /// Whether every value is a finite number.
    pub fn is_finite(&self) -> bool {
        self.x.is_finite()
            && self.y.is_finite()
            && self.angle.is_finite()
            && self.width.is_finite()
            && self.quality.is_finite()
    }
}

/// Wraps any angle into (−π/2, π/2]: a parallel gripper is symmetric under a half turn.
pub fn wrap_half_turn(a: f32) -> f32 {
    let pi = std::f32::consts::PI;
    let mut r = a.rem_euclid(pi); // [0, π)
    if r > FRAC_PI_2 {
        r -= pi;
    }
    // f32 rounding can land exactly on −π/2, which is excluded: the same line is +π/2.
    if r <= -FRAC_PI_2 {
        r = FRAC_PI_2;
    }
    r
}

/// Decodes maps into grasps, reusing its buffers: no allocation once warmed up for a map size.
#[derive(Debug, Default)]
pub struct Decoder {
    /// The decoding parameters.
    pub params: DecodeParams,
    q: Vec<f32>,
    scratch: Vec<f32>,
    kernel: Vec<f32>,
    candidates: Vec<(f32, u32)>,
}

impl Decoder {
    /// A decoder with its filters built for `params`.
    pub fn new(params: DecodeParams) -> Self {
        Decoder { params, ..Default::default() }
    }

    /// Writes up to `top_k` grasps into `out`, best first. Non-finite map values never produce a
    /// grasp; the number of grasps dropped for that reason is returned.
    pub fn decode(&mut self, maps: &GraspMaps, top_k: usize, out: &mut Vec<Grasp>) -> usize {
        out.clear();
        let n = maps.size;
        let p = self.params.clone();
        // Q is smoothed everywhere (peaks are searched in it); angle and width only where a grasp
        // is read, which gives the same values at a fraction of the cost.
        gaussian_blur(&maps.q, n, p.q_sigma, &mut self.q, &mut self.scratch, &mut self.kernel);
        self.candidates.clear();
        match p.mode {
            PeakMode::Argmax => {
                let best = self.q.iter().enumerate().filter(|(_, v)| v.is_finite()).fold(
                    None,
                    |acc: Option<(usize, f32)>, (i, &v)| match acc {
                        Some((_, bv)) if bv >= v => acc,
                        _ => Some((i, v)),
                    },
                );
                if let Some((i, v)) = best {
                    self.candidates.push((v, i as u32));
                }
            }
            PeakMode::LocalMaxima => self.local_maxima(n, p.peak_threshold),
        }
        let mut dropped = 0;
        let d = p.peak_min_distance as i64;
        for &(quality, idx) in &self.candidates {
            if out.len() >= top_k {
                break;
            }
            let (x, y) = ((idx as usize % n) as f32, (idx as usize / n) as f32);
            if out.iter().any(|g| ((g.x - x).abs() as i64) <= d && ((g.y - y).abs() as i64) <= d) {
                continue; // within the minimum distance of a better peak
            }
            let i = idx as usize;
            let (px, py) = (i % n, i / n);
            let cos = blur_at(&maps.cos, n, p.angle_sigma, px, py, &mut self.kernel);
            let sin = blur_at(&maps.sin, n, p.angle_sigma, px, py, &mut self.kernel);
            let width = blur_at(&maps.width, n, p.width_sigma, px, py, &mut self.kernel);
            let g = Grasp { x, y, angle: wrap_half_turn(sin.atan2(cos) / 2.0), width: width * p.width_scale, quality };
            if g.is_finite() && (cos != 0.0 || sin != 0.0) {
                out.push(g);
            } else {
                dropped += 1;
            }
        }
        dropped
    }

    /// The smoothed Q map of the last decode (for heat-map overlays).
    pub fn smoothed_q(&self) -> &[f32] {
        &self.q
    }

    /// Pixels ≥ every 8-neighbour and ≥ threshold, best first.
    fn local_maxima(&mut self, n: usize, threshold: f32) {
        let q = &self.q;
        for y in 0..n {
            for x in 0..n {
                let v = q[y * n + x];
                if !(v >= threshold) {
                    continue; // also rejects NaN
                }
                let mut is_max = true;
                'nb: for yy in y.saturating_sub(1)..(y + 2).min(n) {
                    for xx in x.saturating_sub(1)..(x + 2).min(n) {
                        if q[yy * n + xx] > v {
                            is_max = false;
                            break 'nb;
                        }
                    }
                }
                if is_max {
                    self.candidates.push((v, (y * n + x) as u32));
                }
            }
        }
        // Highest first; ties by raster order so results are deterministic.
        self.candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    }
}

/// Separable Gaussian filter of an `n × n` map, kernel truncated at 4σ, borders clamped (the
/// `nearest` mode of scipy/skimage). σ = 0 copies.
pub fn gaussian_blur(
    src: &[f32],
    n: usize,
    sigma: f32,
    dst: &mut Vec<f32>,
    scratch: &mut Vec<f32>,
    kernel: &mut Vec<f32>,
) {
    dst.resize(n * n, 0.0);
    if sigma <= 0.0 || n == 0 {
        dst.copy_from_slice(&src[..n * n]);
        return;
    }
    let radius = gaussian_kernel(sigma, kernel);
    // The same loops with 8- or 16-lane vectors where the CPU has them (the portable x86-64 build
    // has 4); Rust never fuses a multiply and an add, so every variant gives the same bits.
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F is present (checked on the line above).
            unsafe { blur_passes_avx512(src, n, radius, dst, scratch, kernel) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present (checked on the line above).
            unsafe { blur_passes_avx2(src, n, radius, dst, scratch, kernel) };
            return;
        }
    }
    blur_passes(src, n, radius, dst, scratch, kernel);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn blur_passes_avx512(
    src: &[f32],
    n: usize,
    radius: usize,
    dst: &mut [f32],
    scratch: &mut Vec<f32>,
    kernel: &[f32],
) {
    blur_passes(src, n, radius, dst, scratch, kernel);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn blur_passes_avx2(
    src: &[f32],
    n: usize,
    radius: usize,
    dst: &mut [f32],
    scratch: &mut Vec<f32>,
    kernel: &[f32],
) {
    blur_passes(src, n, radius, dst, scratch, kernel);
}

/// Outputs computed together in registers while the kernel's taps stream past them.
const BLUR_BLOCK: usize = 64;

/// `out[j] = Σ_k kernel[k] · row(k)[j]` for a block of outputs, summed from 0.0 in kernel order
/// (as [`blur_at`] does), the block held in registers across all taps (one load per tap, no
/// store until the end: the tap-by-tap loop over a whole row was load/store bound).
#[inline(always)]
fn convolve_block<'a>(kernel: &[f32], row: impl Fn(usize) -> &'a [f32], out: &mut [f32]) {
    let mut acc = [0.0f32; BLUR_BLOCK];
    for (k, &w) in kernel.iter().enumerate() {
        let src: &[f32; BLUR_BLOCK] = row(k)[..BLUR_BLOCK].try_into().expect("a block");
        for (a, v) in acc.iter_mut().zip(src) {
            *a += w * v;
        }
    }
    out.copy_from_slice(&acc[..out.len()]);
}

#[inline(always)]
fn blur_passes(src: &[f32], n: usize, radius: usize, dst: &mut [f32], scratch: &mut Vec<f32>, kernel: &[f32]) {
    // Rows are padded to whole blocks: the horizontal pass writes `stride` values per row (those
    // past `n` are never read back), the vertical pass reads whole blocks of them.
    let stride = n.div_ceil(BLUR_BLOCK) * BLUR_BLOCK;
    scratch.resize(n * stride + stride + 2 * radius, 0.0);
    let (scratch, padded) = scratch.split_at_mut(n * stride);
    // Horizontal pass over a border-clamped copy of each row into scratch, vertical pass into
    // dst; each output sums its taps in kernel order, exactly as `blur_at` does.
    for y in 0..n {
        let row = &src[y * n..(y + 1) * n];
        padded[..radius].fill(row[0]);
        padded[radius..radius + n].copy_from_slice(row);
        padded[radius + n..].fill(row[n - 1]);
        let out = &mut scratch[y * stride..(y + 1) * stride];
        for (b, block) in out.chunks_exact_mut(BLUR_BLOCK).enumerate() {
            let x0 = b * BLUR_BLOCK;
            convolve_block(kernel, |k| &padded[x0 + k..], block);
        }
    }
    let last = n - 1;
    let scratch = &*scratch;
    for y in 0..n {
        let out = &mut dst[y * n..(y + 1) * n];
        for (b, block) in out.chunks_mut(BLUR_BLOCK).enumerate() {
            let x0 = b * BLUR_BLOCK;
            convolve_block(kernel, |k| &scratch[((y + k).saturating_sub(radius).min(last)) * stride + x0..], block);
        }
    }
}

/// Fills `kernel` with the normalised Gaussian of `sigma`, truncated at 4σ; returns its radius.
fn gaussian_kernel(sigma: f32, kernel: &mut Vec<f32>) -> usize {
    let radius = (4.0 * sigma).ceil() as usize;
    kernel.clear();
    kernel.extend((0..=2 * radius).map(|i| {
        let d = i as f32 - radius as f32;
        (-0.5 * d * d / (sigma * sigma)).exp()
    }));
    let sum: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= sum);
    radius
}

/// The value of [`gaussian_blur`] of `src` at one pixel (same taps, same order, same result).
pub fn blur_at(src: &[f32], n: usize, sigma: f32, x: usize, y: usize, kernel: &mut Vec<f32>) -> f32 {
    if sigma <= 0.0 || n == 0 {
        return src[y * n + x];
    }
    let radius = gaussian_kernel(sigma, kernel);
    let last = n - 1;
    let mut acc = 0.0;
    for (j, wy) in kernel.iter().enumerate() {
        let yy = (y + j).saturating_sub(radius).min(last);
        let row = &src[yy * n..(yy + 1) * n];
        let mut h = 0.0;
        for (k, wx) in kernel.iter().enumerate() {
            h += wx * row[(x + k).saturating_sub(radius).min(last)];
        }
        acc += wy * h;
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    #[test]
    fn blur_at_one_pixel_equals_the_full_blur_bit_for_bit() {
        let n = 37;
        let src: Vec<f32> = (0..n * n).map(|i| ((i * 7919) % 101) as f32 / 101.0).collect();
        let (mut dst, mut scratch, mut kernel) = (Vec::new(), Vec::new(), Vec::new());
        for sigma in [0.0, 1.0, 2.5, 5.0] {
            gaussian_blur(&src, n, sigma, &mut dst, &mut scratch, &mut kernel);
            for (x, y) in [(0, 0), (36, 0), (18, 18), (3, 35), (36, 36)] {
                assert_eq!(blur_at(&src, n, sigma, x, y, &mut kernel), dst[y * n + x], "σ {sigma} at ({x}, {y})");
            }
        }
        // A constant map stays constant (the kernel is normalised, borders clamped).
        gaussian_blur(&vec![0.5; n * n], n, 5.0, &mut dst, &mut scratch, &mut kernel);
        assert!(dst.iter().all(|v| (v - 0.5).abs() < 1e-5));
    }

    #[test]
    fn non_finite_values_are_counted_and_only_they() {
        let mut m = GraspMaps::zeros(4, false);
        m.q[..6].copy_from_slice(&[
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN_POSITIVE / 4.0,
            -0.0,
        ]);
        m.width[15] = -f32::NAN;
        m.cos[3] = f32::MIN;
        assert_eq!(m.count_non_finite(), 4);
    }

    #[test]
    fn every_vector_width_blurs_to_the_same_bits() {
        // The dispatcher picks one variant per CPU; each one must give the portable build's bits
        // (sizes below, at and above a block, σ whose kernel is wider than the map).
        for (n, sigma) in [(1, 1.0), (5, 2.0), (63, 5.0), (64, 5.0), (65, 1.5), (224, 5.0)] {
            let src: Vec<f32> = (0..n * n).map(|i| ((i * 7919) % 101) as f32 / 101.0 - 0.3).collect();
            let (mut kernel, mut scratch) = (Vec::new(), Vec::new());
            let radius = gaussian_kernel(sigma, &mut kernel);
            let mut portable = vec![0.0; n * n];
            blur_passes(&src, n, radius, &mut portable, &mut scratch, &kernel);
            let mut dispatched = Vec::new();
            gaussian_blur(&src, n, sigma, &mut dispatched, &mut scratch, &mut kernel);
            assert_eq!(dispatched, portable, "dispatched variant, n {n}");
            #[cfg(target_arch = "x86_64")]
            {
                let mut v = vec![0.0; n * n];
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: checked on the line above.
                    unsafe { blur_passes_avx2(&src, n, radius, &mut v, &mut scratch, &kernel) };
                    assert_eq!(v, portable, "AVX2, n {n}");
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: checked on the line above.
                    unsafe { blur_passes_avx512(&src, n, radius, &mut v, &mut scratch, &kernel) };
                    assert_eq!(v, portable, "AVX-512, n {n}");
                }
            }
            for (x, y) in [(0, 0), (n - 1, 0), (n / 2, n / 2), (n - 1, n - 1)] {
                assert_eq!(blur_at(&src, n, sigma, x, y, &mut kernel), portable[y * n + x], "blur_at, n {n}");
            }
        }
    }

    /// Maps with Gaussian Q bumps at the given points and uniform angle/width around each.
    fn maps_with(size: usize, grasps: &[(usize, usize, f32, f32, f32)]) -> GraspMaps {
        let mut m = GraspMaps::zeros(size, false);
        for &(gx, gy, angle, width01, peak) in grasps {
            for y in 0..size {
                for x in 0..size {
                    let d2 = (x as f32 - gx as f32).powi(2) + (y as f32 - gy as f32).powi(2);
                    let i = y * size + x;
                    m.q[i] += peak * (-d2 / (2.0 * 3.0f32.powi(2))).exp();
                    if d2 <= 144.0 {
                        m.cos[i] = (2.0 * angle).cos();
                        m.sin[i] = (2.0 * angle).sin();
                        m.width[i] = width01;
                    }
                }
            }
        }
        m
    }

    fn no_smoothing() -> DecodeParams {
        DecodeParams { q_sigma: 0.0, angle_sigma: 0.0, width_sigma: 0.0, ..Default::default() }
    }

    #[test]
    fn hand_built_maps_decode_to_their_grasps() {
        let m = maps_with(100, &[(30, 40, 0.5, 0.2, 1.0), (70, 60, -1.2, 0.4, 0.8)]);
        for params in
            [no_smoothing(), DecodeParams { q_sigma: 2.0, angle_sigma: 1.0, width_sigma: 1.0, ..Default::default() }]
        {
            let mut d = Decoder::new(params);
            let mut out = vec![];
            assert_eq!(d.decode(&m, 5, &mut out), 0);
            assert_eq!(out.len(), 2, "{out:?}");
            assert_eq!((out[0].x, out[0].y), (30.0, 40.0));
            assert_eq!((out[1].x, out[1].y), (70.0, 60.0));
            assert!((out[0].angle - 0.5).abs() < 1e-5 && (out[1].angle + 1.2).abs() < 1e-5, "{out:?}");
            assert!((out[0].width - 30.0).abs() < 1e-3 && (out[1].width - 60.0).abs() < 1e-3);
            assert!(out[0].quality > out[1].quality);
        }
    }

    #[test]
    fn angles_near_the_wrap_survive_smoothing() {
        // Half the neighbourhood says +89°, half says −89°: the same physical grasp. Smoothing the
        // angle would give ~0°; smoothing cos/sin keeps ±90°.
        let mut m = maps_with(64, &[(32, 32, 0.0, 0.3, 1.0)]);
        let a = 89f32.to_radians();
        for y in 0..64 {
            for x in 0..64 {
                let s = if (x + y) % 2 == 0 { a } else { -a };
                m.cos[y * 64 + x] = (2.0 * s).cos();
                m.sin[y * 64 + x] = (2.0 * s).sin();
            }
        }
        let mut d = Decoder::new(DecodeParams { angle_sigma: 3.0, ..no_smoothing() });
        let mut out = vec![];
        d.decode(&m, 1, &mut out);
        assert!((out[0].angle.abs() - FRAC_PI_2).abs() < 1e-3, "{}", out[0].angle);
        // π/2 comes back as the same line (±π/2 within float rounding), inside (−π/2, π/2].
        let m2 = maps_with(32, &[(16, 16, FRAC_PI_2, 0.1, 1.0)]);
        Decoder::new(no_smoothing()).decode(&m2, 1, &mut out);
        assert!(wrap_half_turn(out[0].angle - FRAC_PI_2).abs() < 1e-5, "{}", out[0].angle);
        assert!(out[0].angle > -FRAC_PI_2);
        let m3 = maps_with(32, &[(16, 16, -FRAC_PI_2 + 0.01, 0.1, 1.0)]);
        Decoder::new(no_smoothing()).decode(&m3, 1, &mut out);
        assert!((out[0].angle - (-FRAC_PI_2 + 0.01)).abs() < 1e-4, "{}", out[0].angle);
    }

    #[test]
    fn min_distance_threshold_and_argmax() {
        let m = maps_with(100, &[(30, 30, 0.1, 0.2, 1.0), (40, 30, 0.1, 0.2, 0.9), (80, 80, 0.1, 0.2, 0.1)]);
        let mut d = Decoder::new(no_smoothing());
        let mut out = vec![];
        d.decode(&m, 10, &mut out);
        // (40,30) is within 20 px of the better (30,30); (80,80) is below 0.2.
        assert_eq!(out.len(), 1);
        d.params.peak_min_distance = 5;
        d.decode(&m, 10, &mut out);
        assert_eq!(out.len(), 2);
        d.params.mode = PeakMode::Argmax;
        d.params.peak_threshold = 5.0; // ignored by argmax
        d.decode(&m, 10, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].x, out[0].y), (30.0, 30.0));
    }

    #[test]
    fn nan_maps_never_yield_grasps() {
        let mut m = maps_with(50, &[(25, 25, 0.3, 0.2, 1.0)]);
        m.width[25 * 50 + 25] = f32::NAN;
        let mut d = Decoder::new(no_smoothing());
        let mut out = vec![];
        assert_eq!(d.decode(&m, 3, &mut out), 1);
        assert!(out.iter().all(Grasp::is_finite));
        m.q.iter_mut().for_each(|v| *v = f32::NAN);
        assert_eq!(d.decode(&m, 3, &mut out), 0);
        assert!(out.is_empty());
    }

    #[test]
    fn gaussian_preserves_constants_and_mass() {
        let (mut dst, mut s, mut k) = (vec![], vec![], vec![]);
        gaussian_blur(&vec![2.5; 400], 20, 2.0, &mut dst, &mut s, &mut k);
        assert!(dst.iter().all(|v| (v - 2.5).abs() < 1e-5));
        let mut impulse = vec![0.0; 41 * 41];
        impulse[20 * 41 + 20] = 1.0;
        gaussian_blur(&impulse, 41, 2.0, &mut dst, &mut s, &mut k);
        let total: f32 = dst.iter().sum();
        assert!((total - 1.0).abs() < 1e-5);
        // Peak of a 2-D Gaussian with σ=2: 1/(2πσ²).
        assert!((dst[20 * 41 + 20] - 1.0 / (2.0 * PI * 4.0)).abs() < 1e-3, "{}", dst[20 * 41 + 20]);
    }

    #[test]
    fn wrap_half_turn_range() {
        for i in -100..100 {
            let a = i as f32 * 0.1;
            let w = wrap_half_turn(a);
            assert!(w > -FRAC_PI_2 && w <= FRAC_PI_2 + 1e-6, "{a} -> {w}");
            assert!(((a - w) / PI - ((a - w) / PI).round()).abs() < 1e-4);
        }
    }
}
