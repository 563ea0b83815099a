//! Domain-randomised top-down scenes (`grasp-train synth --randomised`), in the same Jacquard
//! layout and scale as [`crate::synth`]: 1–5 objects per scene from nine families (boxes,
//! cylinders, ellipsoids, rings, L and T shapes, tools with a handle and a head, thin flat
//! strips, racks of thin bars), random object and table textures (including objects nearly the table's colour),
//! shading and contact shadows, sensor noise, blur and JPEG artefacts.
//!
//! Grasps come from each part's geometry (across a bar at several places, across its length,
//! pinching a ring's rim or spanning it) and are kept only when the scene allows them: both jaw
//! pads land on free table, the closing region holds this object and no other, and the opening
//! fits the gripper. Each object set is rendered in [`VIEWS_PER_OBJECT`] views (other placements),
//! so object-wise splits keep a set's views together. Deterministic by seed.

use crate::synth::{Scene, CAMERA_HEIGHT_M, VIEWS_PER_OBJECT};
use grasp_models::metric::GraspRect;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;

/// The object families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// A bevelled box.
    Box,
    /// A cylinder lying on its side.
    Cylinder,
    /// An ellipsoid.
    Ellipsoid,
    /// A flat ring (tape, washer, lid).
    Ring,
    /// Two bars at a right angle, meeting at an end.
    LShape,
    /// Two bars, one from the other's middle.
    TShape,
    /// A round handle with a wider head (hammer, spatula, brush).
    Tool,
    /// A thin, flat strip (ruler, card, cable).
    Thin,
    /// A ladder of thin bars: two long rails joined by 3–5 crossbars that overhang them (a rack,
    /// a trellis, a grid: Jacquard has such objects, graspable only across one bar between joints).
    Rack,
}

/// Every family, in the order they are drawn from.
pub const FAMILIES: [Family; 9] = [
    Family::Box,
    Family::Cylinder,
    Family::Ellipsoid,
    Family::Ring,
    Family::LShape,
    Family::TShape,
    Family::Tool,
    Family::Thin,
    Family::Rack,
];

/// Objects per scene, inclusive.
pub const OBJECTS_PER_SCENE: (usize, usize) = (1, 5);

#[derive(Debug, Clone, Copy)]
enum PartShape {
    /// Half sides; `round`: a cylinder's height profile across `b`.
    Rect { a: f64, b: f64, round: bool },
    /// Semi-axes.
    Ellipse { a: f64, b: f64 },
    /// Radii.
    Ring { outer: f64, inner: f64 },
}

/// A primitive posed in its object's frame (u along the object's axis, v across it).
#[derive(Debug, Clone, Copy)]
struct Part {
    shape: PartShape,
    u: f64,
    v: f64,
    rot: f64,
}

#[derive(Debug, Clone, Copy)]
enum Texture {
    Plain,
    Stripes(f64),
    Checker(f64),
}

#[derive(Debug, Clone)]
struct Object {
    family: Family,
    parts: Vec<Part>,
    height_m: f64,
    albedo: [f64; 3],
    texture: Texture,
}

/// An object placed in the image: centre (px) and rotation (counter-clockwise on screen).
#[derive(Debug, Clone)]
struct Placed {
    object: Object,
    cx: f64,
    cy: f64,
    phi: f64,
}

impl Part {
    /// The point (u, v) of the object frame in this part's frame.
    fn local(&self, u: f64, v: f64) -> (f64, f64) {
        let (s, c) = self.rot.sin_cos();
        let (du, dv) = (u - self.u, v - self.v);
        (du * c + dv * s, -du * s + dv * c)
    }

    /// Height as a fraction of the object's, at object-frame (u, v); None outside.
    fn height(&self, u: f64, v: f64) -> Option<f64> {
        let (p, q) = self.local(u, v);
        match self.shape {
            PartShape::Rect { a, b, round } => {
                let (dp, dq) = (a - p.abs(), b - q.abs());
                if dp < 0.0 || dq < 0.0 {
                    return None;
                }
                Some(if round { (1.0 - (q / b).powi(2)).sqrt().max(0.3) } else { (dp.min(dq) / 2.0).clamp(0.6, 1.0) })
            }
            PartShape::Ellipse { a, b } => {
                let r2 = (p / a).powi(2) + (q / b).powi(2);
                (r2 <= 1.0).then(|| (1.0 - r2).sqrt().max(0.15))
            }
            PartShape::Ring { outer, inner } => {
                let r = p.hypot(q);
                let mid = (outer + inner) / 2.0;
                let half = (outer - inner) / 2.0;
                (r <= outer && r >= inner).then(|| (1.0 - ((r - mid) / half).powi(2)).sqrt().max(0.4))
            }
        }
    }

    /// Grasp candidates in the object frame: (u, v, closing direction angle, opening, jaw).
    fn grasps(&self, margin: impl Fn(f64) -> f64) -> Vec<(f64, f64, f64, f64, f64)> {
        // A candidate in this part's frame (p along it, q across), in the object's frame.
        let in_object = |p: f64, q: f64, rel: f64, opening: f64| {
            let (s, c) = self.rot.sin_cos();
            (self.u + p * c - q * s, self.v + p * s + q * c, self.rot + rel, opening, opening / 2.0)
        };
        let mut out = vec![];
        match self.shape {
            PartShape::Rect { a, b, .. } => {
                out.push(in_object(0.0, 0.0, 0.0, 2.0 * a + margin(2.0 * a)));
                for t in [-0.7, -0.35, 0.0, 0.35, 0.7] {
                    out.push(in_object(t * a, 0.0, PI / 2.0, 2.0 * b + margin(2.0 * b)));
                }
            }
            PartShape::Ellipse { a, b } => {
                out.push(in_object(0.0, 0.0, 0.0, 2.0 * a + margin(2.0 * a)));
                for t in [-0.5f64, -0.25, 0.0, 0.25, 0.5] {
                    let half = b * (1.0 - t * t).sqrt();
                    out.push(in_object(t * a, 0.0, PI / 2.0, 2.0 * half + margin(2.0 * half)));
                }
            }
            PartShape::Ring { outer, inner } => {
                out.push(in_object(0.0, 0.0, 0.0, 2.0 * outer + margin(2.0 * outer)));
                let (mid, w) = ((outer + inner) / 2.0, outer - inner);
                for k in 0..8 {
                    let a = k as f64 * PI / 4.0;
                    out.push(in_object(mid * a.cos(), mid * a.sin(), a, w + margin(w)));
                }
            }
        }
        out
    }
}

impl Object {
    fn height(&self, u: f64, v: f64) -> Option<f64> {
        self.parts.iter().filter_map(|p| p.height(u, v)).reduce(f64::max).map(|h| h * self.height_m)
    }
}

fn colour(rng: &mut ChaCha8Rng) -> [f64; 3] {
    crate::synth::random_albedo(rng, 0.45..0.95)
}

fn random_object(rng: &mut ChaCha8Rng, s: f64, table: [f64; 3]) -> Object {
    let family = FAMILIES[rng.gen_range(0..FAMILIES.len())];
    let rect = |a: f64, b: f64, round: bool, u: f64, v: f64, rot: f64| Part {
        shape: PartShape::Rect { a, b, round },
        u,
        v,
        rot,
    };
    let long = rng.gen_range(0.08..0.18) * s;
    let short = rng.gen_range(0.03..0.07) * s;
    let parts = match family {
        Family::Box => vec![rect(long, short, false, 0.0, 0.0, 0.0)],
        Family::Cylinder => vec![rect(long, short, true, 0.0, 0.0, 0.0)],
        Family::Ellipsoid => {
            vec![Part { shape: PartShape::Ellipse { a: long, b: short.max(0.04 * s) }, u: 0.0, v: 0.0, rot: 0.0 }]
        }
        Family::Ring => {
            let outer = rng.gen_range(0.05..0.09) * s;
            let inner = outer * rng.gen_range(0.5..0.75);
            vec![Part { shape: PartShape::Ring { outer, inner }, u: 0.0, v: 0.0, rot: 0.0 }]
        }
        Family::LShape => {
            let (w, other) = (short * 0.6, rng.gen_range(0.06..0.12) * s);
            vec![rect(long, w, false, 0.0, 0.0, 0.0), rect(other, w, false, long - w, other - w, PI / 2.0)]
        }
        Family::TShape => {
            let (w, stem) = (short * 0.6, rng.gen_range(0.06..0.12) * s);
            vec![rect(long, w, false, 0.0, 0.0, 0.0), rect(stem, w, false, 0.0, stem + w * 0.9, PI / 2.0)]
        }
        Family::Tool => {
            let handle = short * 0.45;
            let (head_a, head_b) = (rng.gen_range(0.02..0.04) * s, rng.gen_range(0.04..0.07) * s);
            vec![rect(long, handle, true, -head_a, 0.0, 0.0), rect(head_a, head_b, false, long, 0.0, 0.0)]
        }
        Family::Thin => vec![rect(long * 1.2, rng.gen_range(0.012..0.025) * s, false, 0.0, 0.0, 0.0)],
        Family::Rack => {
            // Rails along u at ±gap/2; crossbars across them, evenly along the rails, each
            // overhanging by `over`. Every bar is a part, so each carries its own grasps (across
            // it at five places, along it): the scene's checks keep those whose jaws land on free
            // table, i.e. across one bar between two joints.
            let (half_len, bar) = (long * rng.gen_range(1.1..1.5), rng.gen_range(0.007..0.014) * s);
            let (gap, over) = (rng.gen_range(0.06..0.1) * s, rng.gen_range(0.0..0.02) * s);
            let crossbars = rng.gen_range(3..=5);
            let mut parts =
                vec![rect(half_len, bar, false, 0.0, -gap / 2.0, 0.0), rect(half_len, bar, false, 0.0, gap / 2.0, 0.0)];
            for i in 0..crossbars {
                let u = half_len * 0.85 * (2.0 * i as f64 / (crossbars - 1) as f64 - 1.0);
                parts.push(rect(gap / 2.0 + bar + over, bar, false, u, 0.0, PI / 2.0));
            }
            parts
        }
    };
    let height_m = match family {
        Family::Thin => rng.gen_range(0.004..0.012),
        Family::Rack => rng.gen_range(0.008..0.02),
        Family::Ring => rng.gen_range(0.01..0.04),
        _ => rng.gen_range(0.02..0.10),
    };
    // One object in seven nearly the table's colour: low contrast, found by shading and shadow.
    let albedo = if rng.gen_bool(1.0 / 7.0) { table.map(|t| t * rng.gen_range(0.85..1.15)) } else { colour(rng) };
    let texture = match rng.gen_range(0..4) {
        0 => Texture::Stripes(rng.gen_range(0.015..0.05) * s),
        1 => Texture::Checker(rng.gen_range(0.015..0.04) * s),
        _ => Texture::Plain,
    };
    Object { family, parts, height_m, albedo, texture }
}

/// The object frame of pixel (x, y) for an object at (cx, cy) rotated by φ.
fn to_object(p: &Placed, x: f64, y: f64) -> (f64, f64) {
    let (s, c) = p.phi.sin_cos();
    let (dx, dy) = (x - p.cx, y - p.cy);
    (dx * c - dy * s, dx * s + dy * c)
}

/// Object frame (u, v) → pixels.
fn to_pixels(p: &Placed, u: f64, v: f64) -> (f64, f64) {
    let (s, c) = p.phi.sin_cos();
    (p.cx + u * c + v * s, p.cy - u * s + v * c)
}

/// Height map (m) and owner map (0: table; k: object k − 1) of placed objects.
fn rasterise(placed: &[Placed], n: usize) -> (Vec<f64>, Vec<u8>) {
    let (mut height, mut owner) = (vec![0.0; n * n], vec![0u8; n * n]);
    for (k, p) in placed.iter().enumerate() {
        let reach = p.object.parts.iter().map(|q| {
            let r = match q.shape {
                PartShape::Rect { a, b, .. } => a.hypot(b),
                PartShape::Ellipse { a, b } => a.max(b),
                PartShape::Ring { outer, .. } => outer,
            };
            q.u.hypot(q.v) + r
        });
        let r = reach.fold(0.0, f64::max) + 2.0;
        let (x0, x1) = ((p.cx - r).floor().max(0.0) as usize, ((p.cx + r).ceil() as usize).min(n - 1));
        let (y0, y1) = ((p.cy - r).floor().max(0.0) as usize, ((p.cy + r).ceil() as usize).min(n - 1));
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (u, v) = to_object(p, x as f64, y as f64);
                if let Some(h) = p.object.height(u, v) {
                    let i = y * n + x;
                    if h > height[i] {
                        height[i] = h;
                        owner[i] = k as u8 + 1;
                    }
                }
            }
        }
    }
    (height, owner)
}

/// Whether grasp `g` of object `k` (1-based owner id) is executable in the scene: both jaw pads
/// (pad deep beyond each end of the opening, jaw wide) on free table inside the image, and the
/// closing region holding object `k` and no other object.
fn executable(g: &GraspRect, k: u8, owner: &[u8], n: usize, pad: f64) -> bool {
    let (d, e) = ((g.angle.cos(), -g.angle.sin()), (g.angle.sin(), g.angle.cos()));
    let at = |t: f64, s: f64| -> Option<u8> {
        let (x, y) = (g.cx + t * d.0 + s * e.0, g.cy + t * d.1 + s * e.1);
        let (xi, yi) = (x.round(), y.round());
        (xi >= 0.0 && yi >= 0.0 && (xi as usize) < n && (yi as usize) < n).then(|| owner[yi as usize * n + xi as usize])
    };
    let half = g.length / 2.0;
    let steps = |from: f64, to: f64| {
        let m = ((to - from).abs().ceil() as usize).max(1);
        (0..=m).map(move |i| from + (to - from) * i as f64 / m as f64)
    };
    let mut own = false;
    for s in steps(-g.jaw / 2.0, g.jaw / 2.0) {
        for t in steps(half, half + pad).chain(steps(-half - pad, -half)) {
            if at(t, s) != Some(0) {
                return false;
            }
        }
        for t in steps(-half, half) {
            match at(t, s) {
                Some(0) => {}
                Some(o) if o == k => own = true,
                _ => return false,
            }
        }
    }
    own
}

/// Each placed object's part candidates that the scene allows ([`executable`]), in pixels.
fn scene_grasps(placed: &[Placed], owner: &[u8], n: usize) -> Vec<GraspRect> {
    let s = n as f64;
    let margin = |w: f64| w * 0.15 + 0.02 * s;
    let (max_opening, pad) = (0.5 * s, (0.025 * s).max(2.0));
    let mut grasps = vec![];
    for (k, p) in placed.iter().enumerate() {
        for part in &p.object.parts {
            for (u, v, rel, opening, jaw) in part.grasps(margin) {
                if opening > max_opening {
                    continue;
                }
                let (x, y) = to_pixels(p, u, v);
                let angle = grasp_models::decode::wrap_half_turn((p.phi + rel) as f32) as f64;
                let g = GraspRect { cx: x, cy: y, angle, length: opening, jaw };
                if executable(&g, k as u8 + 1, owner, n, pad) {
                    grasps.push(g);
                }
            }
        }
    }
    grasps
}

/// What the views of one scene set share: the table and the objects.
struct SceneSet {
    table: [f64; 3],
    table_texture: u32,
    grain_period: f64,
    grain_dir: f64,
    objects: Vec<Object>,
}

fn scene_set(seed: u64, index: usize, s: f64) -> SceneSet {
    let set = index / VIEWS_PER_OBJECT;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xA11C_E5E7 ^ (set as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let table = {
        let g = rng.gen_range(0.35..0.92);
        let tint = colour(&mut rng);
        let mix = rng.gen_range(0.0..0.35);
        [0, 1, 2].map(|c| g * (1.0 - mix) + tint[c] * mix * g)
    };
    let table_texture = rng.gen_range(0..4);
    let (grain_period, grain_dir) = (rng.gen_range(0.01..0.04) * s, rng.gen_range(0.0..PI));
    let count = rng.gen_range(OBJECTS_PER_SCENE.0..=OBJECTS_PER_SCENE.1);
    let objects = (0..count).map(|_| random_object(&mut rng, s, table)).collect();
    SceneSet { table, table_texture, grain_period, grain_dir, objects }
}

/// The families of the objects in scene `index` of `seed` (all views of a set show the same).
pub fn scene_families(seed: u64, index: usize, size: usize) -> Vec<Family> {
    scene_set(seed, index, size as f64).objects.iter().map(|o| o.family).collect()
}

/// One domain-randomised scene: scene `index` of `seed`, `size`² pixels of the 300 mm table.
pub fn randomised_scene(seed: u64, index: usize, size: usize) -> Scene {
    randomised_top_down(seed, index, size, true).0
}

/// [`randomised_scene`], with or without the sensor's artefacts (noise, blur, JPEG), and the
/// table's base colour. Without them the scene is the texture a posed camera renders (which adds
/// its own noise): its table is plain, since the camera also sees table beyond the scene's square,
/// drawn in the base colour, and a textured square would show an edge no real table has.
pub(crate) fn randomised_top_down(seed: u64, index: usize, size: usize, artefacts: bool) -> (Scene, [f64; 3]) {
    let n = size;
    let s = n as f64;
    let SceneSet { table, table_texture, grain_period, grain_dir, objects } = scene_set(seed, index, s);
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(7) ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    // Place the objects one by one where they overlap no earlier one (30 tries each).
    let mut placed: Vec<Placed> = vec![];
    for o in objects {
        let (_, before) = rasterise(&placed, n);
        for _ in 0..30 {
            let cand = Placed {
                object: o.clone(),
                cx: rng.gen_range(0.18..0.82) * s,
                cy: rng.gen_range(0.18..0.82) * s,
                phi: rng.gen_range(-PI..PI),
            };
            let (_, alone) = rasterise(std::slice::from_ref(&cand), n);
            // No overlap, and at least 3 px of table between objects.
            let clear = (0..n * n).filter(|&i| alone[i] != 0).all(|i| {
                let (x, y) = (i % n, i / n);
                (y.saturating_sub(3)..(y + 4).min(n))
                    .all(|yy| (x.saturating_sub(3)..(x + 4).min(n)).all(|xx| before[yy * n + xx] == 0))
            });
            if clear {
                placed.push(cand);
                break;
            }
        }
    }
    let (height, owner) = rasterise(&placed, n);

    let grasps = scene_grasps(&placed, &owner, n);

    // Appearance.
    let noise = if artefacts { rng.gen_range(0.0..0.04) } else { 0.0 };
    let shadow = rng.gen_range(0.55..0.9);
    let h = |x: usize, y: usize| height[y.min(n - 1) * n + x.min(n - 1)];
    let mut rgb = vec![0u8; n * n * 3];
    let (mut mask, mut depth) = (vec![0u8; n * n], vec![0f32; n * n]);
    for y in 0..n {
        for x in 0..n {
            let i = y * n + x;
            let shade = crate::synth::shade(&height, n, x, y);
            let c = if owner[i] != 0 {
                let p = &placed[owner[i] as usize - 1];
                let (u, v) = to_object(p, x as f64, y as f64);
                let t = match p.object.texture {
                    Texture::Plain => 1.0,
                    Texture::Stripes(period) => {
                        if (u / period).rem_euclid(2.0) < 1.0 {
                            0.8
                        } else {
                            1.0
                        }
                    }
                    Texture::Checker(period) => {
                        if ((u / period).floor() + (v / period).floor()).rem_euclid(2.0) < 1.0 {
                            0.78
                        } else {
                            1.0
                        }
                    }
                };
                p.object.albedo.map(|a| a * t * shade)
            } else {
                let (fx, fy) = (x as f64, y as f64);
                let along = fx * grain_dir.cos() + fy * grain_dir.sin();
                let grain = match if artefacts { table_texture } else { 0 } {
                    0 => 1.0,
                    1 => 0.92 + 0.08 * (2.0 * PI * along / grain_period).sin(),
                    2 => 0.9 + 0.2 * fx / s,
                    _ => 0.94 + 0.06 * ((fx * 0.31).sin() * (fy * 0.27).cos()),
                };
                let near = (1..6).any(|k| h(x.saturating_sub(k), y.saturating_sub(k)) > 0.0);
                table.map(|b| b * grain * if near { shadow } else { 1.0 })
            };
            let jitter = if noise > 0.0 { rng.gen_range(-noise..noise) } else { 0.0 };
            for ch in 0..3 {
                rgb[i * 3 + ch] = ((c[ch] + jitter).clamp(0.0, 1.0) * 255.0).round() as u8;
            }
            mask[i] = if owner[i] != 0 { 255 } else { 0 };
            depth[i] = CAMERA_HEIGHT_M - height[i] as f32;
        }
    }
    if artefacts && rng.gen_bool(0.3) {
        rgb = box_blur(&rgb, n);
    }
    if artefacts && rng.gen_bool(0.3) {
        rgb = jpeg_round_trip(&rgb, n, rng.gen_range(30..90)).unwrap_or(rgb);
    }
    (Scene { width: n, height: n, rgb, depth, mask, grasps }, table)
}

/// Writes `count` randomised scenes of `size`² pixels under `out` in the Jacquard layout, and
/// `synth.toml` (top-down, [`crate::synth::SCENE_MM`] across, `randomised = true`).
pub fn write_randomised_dataset(
    out: &std::path::Path,
    count: usize,
    seed: u64,
    size: usize,
    progress: impl FnMut(usize),
) -> Result<(), crate::dataset::DatasetError> {
    crate::synth::write_scenes(out, count, seed, |index| Ok(randomised_scene(seed, index, size)), progress)?;
    let info = crate::synth::SynthInfo {
        count,
        seed,
        kind: crate::synth::SynthKind::TopDown,
        size,
        mm_per_px: Some(crate::synth::SCENE_MM / size as f64),
        camera: None,
        randomised: true,
    };
    info.write(out)
}

/// A 3×3 box blur of a packed RGB8 image (defocus).
fn box_blur(rgb: &[u8], n: usize) -> Vec<u8> {
    let mut out = rgb.to_vec();
    for y in 0..n {
        for x in 0..n {
            for ch in 0..3 {
                let (mut sum, mut k) = (0u32, 0u32);
                for yy in y.saturating_sub(1)..(y + 2).min(n) {
                    for xx in x.saturating_sub(1)..(x + 2).min(n) {
                        sum += rgb[(yy * n + xx) * 3 + ch] as u32;
                        k += 1;
                    }
                }
                out[(y * n + x) * 3 + ch] = ((sum + k / 2) / k) as u8;
            }
        }
    }
    out
}

/// The image after JPEG compression at `quality` (block artefacts, as a webcam's MJPEG stream).
fn jpeg_round_trip(rgb: &[u8], n: usize, quality: u8) -> Option<Vec<u8>> {
    let mut bytes = vec![];
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
        .encode(rgb, n as u32, n as u32, image::ExtendedColorType::Rgb8)
        .ok()?;
    Some(image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).ok()?.to_rgb8().into_raw())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn scenes_are_deterministic_and_views_of_a_set_share_their_objects() {
        let a = randomised_scene(5, 6, 160);
        let b = randomised_scene(5, 6, 160);
        assert!(a.rgb == b.rgb && a.depth == b.depth && a.grasps.len() == b.grasps.len());
        let other_view = randomised_scene(5, 7, 160);
        assert_ne!(a.rgb, other_view.rgb, "another placement");
        assert_eq!(scene_families(5, 6, 160), scene_families(5, 7, 160));
    }

    #[test]
    fn every_family_and_one_to_five_objects_occur() {
        let (mut families, mut counts) = (HashSet::new(), HashSet::new());
        for i in (0..200).step_by(VIEWS_PER_OBJECT) {
            let f = scene_families(1, i, 200);
            counts.insert(f.len());
            families.extend(f.iter().map(|f| format!("{f:?}")));
        }
        assert_eq!(counts, (1..=5).collect());
        assert_eq!(families.len(), FAMILIES.len(), "{families:?}");
    }

    #[test]
    fn every_grasp_is_executable_in_its_scene() {
        // Checked again from the rendered mask: pads on table, the closing region on an object
        // and inside the image; openings within the gripper. And scenes do have grasps.
        let n = 200;
        let mut total = 0;
        for i in 0..24 {
            let s = randomised_scene(3, i, n);
            total += s.grasps.len();
            for g in &s.grasps {
                assert!(g.length <= 0.5 * n as f64 && g.jaw > 0.0, "{g:?}");
                let (dx, dy) = (g.angle.cos(), -g.angle.sin());
                let at = |t: f64| {
                    let (x, y) = ((g.cx + t * dx).round() as usize, (g.cy + t * dy).round() as usize);
                    s.mask[y * n + x]
                };
                let half = g.length / 2.0;
                assert_eq!(at(half + 1.0), 0, "jaw pad on an object: scene {i} {g:?}");
                assert_eq!(at(-half - 1.0), 0, "jaw pad on an object: scene {i} {g:?}");
                let crosses = (0..=20).any(|k| at(-half + g.length * k as f64 / 20.0) == 255);
                assert!(crosses, "a grasp that closes on nothing: scene {i} {g:?}");
            }
        }
        assert!(total >= 24 * 3, "{total} grasps in 24 scenes");
    }

    #[test]
    fn a_written_set_loads_back_with_two_views_per_object_set() {
        use crate::dataset::{load, scan, DatasetKind, DatasetSpec};
        let d = tempfile::tempdir().unwrap();
        write_randomised_dataset(d.path(), 4, 2, 96, |_| {}).unwrap();
        let refs = scan(&DatasetSpec { kind: DatasetKind::Jacquard, path: d.path().into() }).unwrap();
        assert_eq!(refs.len(), 4);
        let ids: HashSet<_> = refs.iter().map(|r| r.object_id.clone()).collect();
        assert_eq!(ids.len(), 2, "two views per object set");
        let s = load(&refs[0]).unwrap();
        assert!(s.depth.is_some() && s.mask.is_some() && (s.width, s.height) == (96, 96));
        let info = crate::synth::SynthInfo::read(d.path()).unwrap().unwrap();
        assert!(info.randomised && info.mm_per_px == Some(300.0 / 96.0));
    }

    #[test]
    fn a_grasp_blocked_by_a_neighbour_is_refused() {
        // Object 1 a bar across x 40..60 at y 50; object 2 right beside its end: the grasp along
        // the bar's length would put a jaw pad on object 2.
        let n = 100;
        let mut owner = vec![0u8; n * n];
        for y in 45..56 {
            for x in 40..61 {
                owner[y * n + x] = 1;
            }
            for x in 66..70 {
                owner[y * n + x] = 2;
            }
        }
        let along = GraspRect { cx: 50.0, cy: 50.0, angle: 0.0, length: 26.0, jaw: 8.0 };
        assert!(!executable(&along, 1, &owner, n, 3.0), "pad on the neighbour");
        assert!(executable(&GraspRect { length: 24.0, ..along }, 1, &owner, n, 2.0));
        let across = GraspRect { cx: 50.0, cy: 50.0, angle: std::f64::consts::FRAC_PI_2, length: 16.0, jaw: 8.0 };
        assert!(executable(&across, 1, &owner, n, 2.0));
        assert!(!executable(&across, 2, &owner, n, 2.0), "closes on another object only");
    }

    #[test]
    fn a_rack_is_grasped_across_single_bars_between_its_joints() {
        let n = 300;
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let rack = (0..500)
            .map(|_| random_object(&mut rng, n as f64, [0.6; 3]))
            .find(|o| o.family == Family::Rack)
            .expect("racks are drawn");
        assert!((4..=7).contains(&rack.parts.len()), "two rails and 3-5 crossbars");
        let placed = vec![Placed { object: rack.clone(), cx: 150.0, cy: 150.0, phi: 0.4 }];
        let (_, owner) = rasterise(&placed, n);
        // The ladder has holes: table pixels inside its outline.
        let inside_hole = {
            let (x, y) = to_pixels(&placed[0], 0.5 * (rack.parts[2].u + rack.parts[3].u), 0.0);
            owner[y.round() as usize * n + x.round() as usize]
        };
        assert_eq!(inside_hole, 0, "between two crossbars and the rails: table");
        let grasps = scene_grasps(&placed, &owner, n);
        let PartShape::Rect { b: bar, .. } = rack.parts[0].shape else { panic!("rails are bars") };
        let across_one_bar = grasps.iter().filter(|g| g.length < 6.0 * bar).count();
        assert!(across_one_bar >= 6, "rails and crossbars grasped across between joints: {grasps:?}");
        // Across a rail exactly at a crossbar would put a jaw pad on the crossbar: never kept.
        for g in &grasps {
            let (dx, dy) = (g.angle.cos(), -g.angle.sin());
            for t in [g.length / 2.0 + 1.0, -g.length / 2.0 - 1.0] {
                let (x, y) = ((g.cx + t * dx).round() as usize, (g.cy + t * dy).round() as usize);
                assert_eq!(owner[y * n + x], 0, "a jaw pad on the rack: {g:?}");
            }
        }
    }
}
