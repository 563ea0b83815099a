//! The calibration fiducial: a saturated coloured disc on the gripper (default magenta: rare in
//! workshops, far from skin, wood and grey metal). Detected by colour distance, connected
//! components and a roundness check; the centre is the colour-match-weighted centroid of the
//! blob, which is sub-pixel (the disc's anti-aliased rim contributes its partial coverage).
//! Pixel coordinates as everywhere in grasp-edge: pixel (x, y) has its centre at (x, y).
//! [`draw_disc`] renders the marker with exact-coverage anti-aliasing, for synthetic frames.

/// What the marker looks like.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkerSpec {
    /// The disc's colour (sRGB).
    pub colour: [u8; 3],
    /// Colour distance (Euclidean in RGB) at which a pixel stops counting as marker.
    pub tolerance: f32,
    /// Smallest blob area in pixels (a disc of radius 3 px has ~28).
    pub min_area: usize,
}

impl Default for MarkerSpec {
    fn default() -> Self {
        MarkerSpec { colour: [255, 0, 255], tolerance: 120.0, min_area: 20 }
    }
}

/// A detected marker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Centre column, pixels (sub-pixel).
    pub u: f64,
    /// Centre row, pixels (sub-pixel).
    pub v: f64,
    /// Area, pixels.
    pub area_px: f64,
    /// Radius from the area, px.
    pub radius_px: f64,
}

/// Why no marker was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MarkerError {
    /// No blob of the marker's colour is large enough.
    #[error("marker not visible: no blob of its colour with at least {min_area} px (largest {largest} px); check lighting, focus and that the disc faces the camera")]
    NotVisible {
        /// Smallest area accepted, pixels.
        min_area: usize,
        /// Largest blob seen, pixels.
        largest: usize,
    },
    /// Several blobs of similar size.
    #[error("marker ambiguous: {count} blobs of its colour of similar size ({areas:?} px); remove other objects of that colour from view")]
    Ambiguous {
        /// How many.
        count: usize,
        /// Their areas, pixels.
        areas: Vec<usize>,
    },
    /// The blob is not a disc (cut off, or not the marker).
    #[error("marker blob at ({u:.0}, {v:.0}) is not round (fill {fill:.2} of its bounding box, a disc fills 0.79); it may be cut by the image border or occluded")]
    NotRound {
        /// Its centre column.
        u: f64,
        /// Its centre row.
        v: f64,
        /// Fraction of its bounding box it fills.
        fill: f64,
    },
    /// The image buffer has the wrong size.
    #[error("image buffer holds {got} bytes, {width}x{height} RGB needs {need}")]
    BadBuffer {
        /// Bytes given.
        got: usize,
        /// Bytes needed.
        need: usize,
        /// Pixels per row.
        width: usize,
        /// Rows.
        height: usize,
    },
}

/// Match weight of a pixel in [0, 1]: 1 at the marker colour, 0 beyond the tolerance.
fn weight(px: &[u8], spec: &MarkerSpec) -> f32 {
    let d2: f32 = (0..3).map(|i| (px[i] as f32 - spec.colour[i] as f32).powi(2)).sum();
    (1.0 - d2.sqrt() / spec.tolerance).max(0.0)
}

/// Finds the marker in a packed RGB8 frame.
pub fn detect(rgb: &[u8], width: usize, height: usize, spec: &MarkerSpec) -> Result<Detection, MarkerError> {
    let need = width * height * 3;
    if rgb.len() < need || width == 0 || height == 0 {
        return Err(MarkerError::BadBuffer { got: rgb.len(), need, width, height });
    }
    // Pixels clearly of the marker colour seed the blobs (half the tolerance); the weights of the
    // rim pixels around them give the sub-pixel centre.
    let weights: Vec<f32> = rgb[..need].chunks_exact(3).map(|p| weight(p, spec)).collect();
    let mut label = vec![u32::MAX; width * height];
    let mut blobs: Vec<(usize, [usize; 4])> = Vec::new(); // (area, bbox x0 y0 x1 y1)
    let mut stack = Vec::new();
    for start in 0..width * height {
        if label[start] != u32::MAX || weights[start] < 0.5 {
            continue;
        }
        let id = blobs.len() as u32;
        let (mut area, mut bb) = (0usize, [usize::MAX, usize::MAX, 0, 0]);
        stack.push(start);
        label[start] = id;
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            area += 1;
            bb = [bb[0].min(x), bb[1].min(y), bb[2].max(x), bb[3].max(y)];
            let mut push = |j: usize| {
                if label[j] == u32::MAX && weights[j] >= 0.5 {
                    label[j] = id;
                    stack.push(j);
                }
            };
            if x > 0 {
                push(i - 1);
            }
            if x + 1 < width {
                push(i + 1);
            }
            if y > 0 {
                push(i - width);
            }
            if y + 1 < height {
                push(i + width);
            }
        }
        blobs.push((area, bb));
    }
    let largest = blobs.iter().map(|b| b.0).max().unwrap_or(0);
    if largest < spec.min_area {
        return Err(MarkerError::NotVisible { min_area: spec.min_area, largest });
    }
    // Another blob at least half the size of the largest makes the choice a guess.
    let mut big: Vec<usize> = blobs.iter().map(|b| b.0).filter(|a| *a * 2 >= largest && *a >= spec.min_area).collect();
    if big.len() > 1 {
        big.sort_unstable_by(|a, b| b.cmp(a));
        return Err(MarkerError::Ambiguous { count: big.len(), areas: big });
    }
    let (id, &(area, bb)) = blobs.iter().enumerate().max_by_key(|(_, b)| b.0).expect("largest exists");
    // Weighted centroid over the blob grown by 2 px (to include the anti-aliased rim).
    let (x0, y0) = (bb[0].saturating_sub(2), bb[1].saturating_sub(2));
    let (x1, y1) = ((bb[2] + 2).min(width - 1), (bb[3] + 2).min(height - 1));
    let (mut sw, mut sx, mut sy) = (0.0f64, 0.0f64, 0.0f64);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let i = y * width + x;
            // Rim pixels belong to this blob if they are not another blob's core.
            if label[i] != u32::MAX && label[i] != id as u32 {
                continue;
            }
            let w = weights[i] as f64;
            sw += w;
            sx += w * x as f64;
            sy += w * y as f64;
        }
    }
    let (u, v) = (sx / sw, sy / sw);
    let (bw, bh) = ((bb[2] - bb[0] + 1) as f64, (bb[3] - bb[1] + 1) as f64);
    let fill = area as f64 / (bw * bh);
    let touches_border = bb[0] == 0 || bb[1] == 0 || bb[2] + 1 == width || bb[3] + 1 == height;
    if touches_border || !(0.6..=0.95).contains(&fill) || (bw / bh - 1.0).abs() > 0.35 {
        return Err(MarkerError::NotRound { u, v, fill });
    }
    Ok(Detection { u, v, area_px: sw, radius_px: (sw / std::f64::consts::PI).sqrt() })
}

/// Draws a disc of `radius` px centred at (u, v) with coverage
/// anti-aliasing (4×4 supersampling), blending `colour` over the frame.
pub fn draw_disc(rgb: &mut [u8], width: usize, height: usize, u: f64, v: f64, radius: f64, colour: [u8; 3]) {
    let (x0, x1) =
        (((u - radius - 1.0).floor().max(0.0)) as usize, ((u + radius + 1.0).ceil().max(0.0) as usize).min(width));
    let (y0, y1) =
        (((v - radius - 1.0).floor().max(0.0)) as usize, ((v + radius + 1.0).ceil().max(0.0) as usize).min(height));
    let r2 = radius * radius;
    for y in y0..y1 {
        for x in x0..x1 {
            let mut inside = 0;
            for sy in 0..4 {
                for sx in 0..4 {
                    let (px, py) = (x as f64 - 0.5 + (sx as f64 + 0.5) / 4.0, y as f64 - 0.5 + (sy as f64 + 0.5) / 4.0);
                    if (px - u).powi(2) + (py - v).powi(2) <= r2 {
                        inside += 1;
                    }
                }
            }
            if inside == 0 {
                continue;
            }
            let a = inside as f64 / 16.0;
            let o = (y * width + x) * 3;
            for c in 0..3 {
                rgb[o + c] = (rgb[o + c] as f64 * (1.0 - a) + colour[c] as f64 * a).round() as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn background(w: usize, h: usize, seed: u64) -> Vec<u8> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..w * h * 3).map(|i| (110 + (i % 7) as i32 * 3 + rng.gen_range(-8..8)) as u8).collect()
    }

    #[test]
    fn sub_pixel_centre_on_noisy_frames() {
        let spec = MarkerSpec::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20261126);
        let mut worst = 0.0f64;
        for seed in 0..40 {
            let (w, h) = (160, 120);
            let mut img = background(w, h, seed);
            let (u, v, r) = (rng.gen_range(20.0..140.0), rng.gen_range(20.0..100.0), rng.gen_range(4.0..12.0));
            draw_disc(&mut img, w, h, u, v, r, spec.colour);
            let d = detect(&img, w, h, &spec).unwrap();
            worst = worst.max(((d.u - u).powi(2) + (d.v - v).powi(2)).sqrt());
            assert!((d.radius_px - r).abs() < 0.6, "radius {} vs {r}", d.radius_px);
        }
        assert!(worst < 0.1, "worst centre error {worst:.3} px");
    }

    #[test]
    fn failures_are_specific() {
        let spec = MarkerSpec::default();
        let (w, h) = (100, 80);
        let img = background(w, h, 1);
        assert!(matches!(detect(&img, w, h, &spec), Err(MarkerError::NotVisible { largest: 0, .. })));
        let mut two = img.clone();
        draw_disc(&mut two, w, h, 25.0, 40.0, 6.0, spec.colour);
        draw_disc(&mut two, w, h, 70.0, 40.0, 5.5, spec.colour);
        assert!(matches!(detect(&two, w, h, &spec), Err(MarkerError::Ambiguous { count: 2, .. })));
        let mut cut = img.clone();
        draw_disc(&mut cut, w, h, 2.0, 40.0, 8.0, spec.colour);
        assert!(matches!(detect(&cut, w, h, &spec), Err(MarkerError::NotRound { .. })));
        let mut bar = img.clone();
        for x in 20..70 {
            for y in 30..34 {
                bar[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&spec.colour);
            }
        }
        assert!(matches!(detect(&bar, w, h, &spec), Err(MarkerError::NotRound { .. })));
        let mut tiny = img.clone();
        draw_disc(&mut tiny, w, h, 50.0, 40.0, 1.5, spec.colour);
        assert!(matches!(detect(&tiny, w, h, &spec), Err(MarkerError::NotVisible { .. })));
        assert!(matches!(detect(&img[..10], w, h, &spec), Err(MarkerError::BadBuffer { .. })));
        // A small speck of the colour next to the marker does not make it ambiguous.
        let mut speck = img;
        draw_disc(&mut speck, w, h, 50.0, 40.0, 8.0, spec.colour);
        draw_disc(&mut speck, w, h, 85.0, 15.0, 2.5, spec.colour);
        let d = detect(&speck, w, h, &spec).unwrap();
        assert!((d.u - 50.0).abs() < 0.1 && (d.v - 40.0).abs() < 0.1);
    }
}
