//! Grasp rectangles and the Cornell/Jacquard success metric.
//!
//! A predicted grasp succeeds if, against *any* ground-truth rectangle, IoU > 0.25 and the angle
//! difference modulo π is < 30°. As in GG-CNN, a predicted grasp becomes a rectangle whose length
//! (along the opening) is its width and whose jaw size is half that.
//!
//! IoU is exact (convex polygon clipping); a raster mode reproduces GG-CNN's pixel counting.

use crate::decode::Grasp;
use std::f64::consts::PI;

/// IoU above which a grasp matches (strictly greater).
pub const IOU_THRESHOLD: f64 = 0.25;
/// Angle difference below which a grasp matches (strictly less), radians.
pub const ANGLE_THRESHOLD: f64 = PI / 6.0;

/// An oriented grasp rectangle in pixel coordinates (conventions of [`crate::decode`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GraspRect {
    /// Centre column, pixels.
    pub cx: f64,
    /// Centre row, pixels.
    pub cy: f64,
    /// Radians, counter-clockwise on screen; the opening runs along (cos, −sin).
    pub angle: f64,
    /// Extent along the opening direction (the gripper opening).
    pub length: f64,
    /// Extent across it (the jaw size).
    pub jaw: f64,
}

impl GraspRect {
    /// The rectangle a predicted grasp stands for: length = width, jaw = width / 2.
    pub fn from_grasp(g: &Grasp) -> Self {
        let w = g.width as f64;
        GraspRect { cx: g.x as f64, cy: g.y as f64, angle: g.angle as f64, length: w, jaw: w / 2.0 }
    }

    /// From four corners in Cornell order: the first edge (p0 → p1) spans the opening, the second
    /// (p1 → p2) the jaw.
    pub fn from_corners(p: [(f64, f64); 4]) -> Self {
        let (cx, cy) = p.iter().fold((0.0, 0.0), |(x, y), q| (x + q.0 / 4.0, y + q.1 / 4.0));
        let (dx, dy) = (p[1].0 - p[0].0, p[1].1 - p[0].1);
        // atan2 gives (−π, π]; a parallel gripper is the same under a half turn → (−π/2, π/2].
        let mut angle = (-dy).atan2(dx);
        if angle > PI / 2.0 {
            angle -= PI;
        } else if angle <= -PI / 2.0 {
            angle += PI;
        }
        GraspRect { cx, cy, angle, length: dx.hypot(dy), jaw: (p[2].0 - p[1].0).hypot(p[2].1 - p[1].1) }
    }

    /// The rectangle seen through a point map `f` (e.g. a camera's projection, or image → table
    /// view): its centre, both ends of the opening and both edges of the jaw are mapped, and the
    /// result is the rectangle through them (exact for affine maps, a local linearisation for a
    /// perspective one). None when `f` has no image for one of those points.
    pub fn mapped(&self, f: impl Fn(f64, f64) -> Option<(f64, f64)>) -> Option<GraspRect> {
        let (ux, uy) = (self.angle.cos(), -self.angle.sin()); // opening direction, pixels
        let (vx, vy) = (-uy, ux);
        let (l, j) = (self.length / 2.0, self.jaw / 2.0);
        let c = f(self.cx, self.cy)?;
        let (a, b) = (f(self.cx - ux * l, self.cy - uy * l)?, f(self.cx + ux * l, self.cy + uy * l)?);
        let (p, q) = (f(self.cx - vx * j, self.cy - vy * j)?, f(self.cx + vx * j, self.cy + vy * j)?);
        let (du, dv) = (b.0 - a.0, b.1 - a.1);
        let mut angle = (-dv).atan2(du);
        if angle > PI / 2.0 {
            angle -= PI;
        } else if angle <= -PI / 2.0 {
            angle += PI;
        }
        Some(GraspRect { cx: c.0, cy: c.1, angle, length: du.hypot(dv), jaw: (q.0 - p.0).hypot(q.1 - p.1) })
    }

    /// Corners, counter-clockwise in a y-up frame (so the shoelace area is positive in pixel
    /// coordinates with y down, consistently for every rectangle).
    pub fn corners(&self) -> [(f64, f64); 4] {
        let (ux, uy) = (self.angle.cos(), -self.angle.sin()); // opening direction, pixels
        let (vx, vy) = (-uy, ux); // perpendicular
        let (l, j) = (self.length / 2.0, self.jaw / 2.0);
        [
            (self.cx - ux * l - vx * j, self.cy - uy * l - vy * j),
            (self.cx + ux * l - vx * j, self.cy + uy * l - vy * j),
            (self.cx + ux * l + vx * j, self.cy + uy * l + vy * j),
            (self.cx - ux * l + vx * j, self.cy - uy * l + vy * j),
        ]
    }

    /// Area, square pixels.
    pub fn area(&self) -> f64 {
        self.length * self.jaw
    }

    /// Whether the point (`x`, `y`) lies inside the rectangle (edges included).
    pub fn contains(&self, x: f64, y: f64) -> bool {
        let (ux, uy) = (self.angle.cos(), -self.angle.sin()); // opening direction, as `corners`
        let (dx, dy) = (x - self.cx, y - self.cy);
        let along = dx * ux + dy * uy;
        let across = dx * -uy + dy * ux;
        along.abs() <= self.length / 2.0 && across.abs() <= self.jaw / 2.0
    }
}

/// What became of one image's top grasp, taking the model's three decisions in the order the
/// decoder makes them: where (the Q peak), which way (angle), how wide (width).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The metric accepts the grasp.
    Success,
    /// No grasp at all (or a non-finite one).
    NoGrasp,
    /// The centre lies inside no ground-truth rectangle: Q picked the wrong place.
    Place,
    /// The centre is inside ground-truth rectangles, but every one of them is ≥ 30° away.
    Angle,
    /// Right place and an angle within 30° of a rectangle there, yet no IoU > 0.25: the width
    /// (opening, and the jaw size that follows from it) is off.
    Width,
}

impl Outcome {
    /// Every outcome, success first.
    pub const ALL: [Outcome; 5] = [Outcome::Success, Outcome::Place, Outcome::Angle, Outcome::Width, Outcome::NoGrasp];

    /// The outcome's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Place => "place",
            Outcome::Angle => "angle",
            Outcome::Width => "width",
            Outcome::NoGrasp => "none",
        }
    }
}

/// Classifies a predicted grasp against an image's ground truth ([`grasp_succeeds`] first, so
/// `Success` is exactly the metric's verdict).
pub fn outcome(pred: Option<&Grasp>, ground_truth: &[GraspRect], mode: IouMode) -> Outcome {
    let Some(pred) = pred.filter(|g| g.is_finite()) else {
        return Outcome::NoGrasp;
    };
    if grasp_succeeds(pred, ground_truth, mode) {
        return Outcome::Success;
    }
    let (x, y, angle) = (pred.x as f64, pred.y as f64, pred.angle as f64);
    let mut under = ground_truth.iter().filter(|r| r.contains(x, y)).peekable();
    if under.peek().is_none() {
        Outcome::Place
    } else if under.any(|r| angle_difference(angle, r.angle) < ANGLE_THRESHOLD) {
        Outcome::Width
    } else {
        Outcome::Angle
    }
}

/// Absolute angle difference of two grasp directions modulo π, in [0, π/2].
pub fn angle_difference(a: f64, b: f64) -> f64 {
    ((a - b + PI / 2.0).rem_euclid(PI) - PI / 2.0).abs()
}

fn polygon_area(p: &[(f64, f64)]) -> f64 {
    let n = p.len();
    (0..n).map(|i| p[i].0 * p[(i + 1) % n].1 - p[(i + 1) % n].0 * p[i].1).sum::<f64>() / 2.0
}

/// Intersection area of two convex polygons with the same orientation (Sutherland–Hodgman).
fn convex_intersection_area(subject: &[(f64, f64)], clip: &[(f64, f64)]) -> f64 {
    let orientation = polygon_area(clip).signum();
    let mut poly: Vec<(f64, f64)> = subject.to_vec();
    let mut next = Vec::with_capacity(8);
    for i in 0..clip.len() {
        let (a, b) = (clip[i], clip[(i + 1) % clip.len()]);
        let side = |p: (f64, f64)| orientation * ((b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0));
        next.clear();
        for j in 0..poly.len() {
            let (p, q) = (poly[j], poly[(j + 1) % poly.len()]);
            let (sp, sq) = (side(p), side(q));
            if sp >= 0.0 {
                next.push(p);
            }
            if (sp >= 0.0) != (sq >= 0.0) {
                let t = sp / (sp - sq);
                next.push((p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1)));
            }
        }
        std::mem::swap(&mut poly, &mut next);
        if poly.len() < 3 {
            return 0.0;
        }
    }
    polygon_area(&poly).abs()
}

/// Exact IoU of two rotated rectangles.
pub fn iou(a: &GraspRect, b: &GraspRect) -> f64 {
    let inter = convex_intersection_area(&a.corners(), &b.corners());
    let union = a.area() + b.area() - inter;
    if union <= 0.0 {
        0.0
    } else {
        (inter / union).clamp(0.0, 1.0)
    }
}

/// GG-CNN-compatible IoU: counts the pixels whose centres fall inside each rectangle
/// (as `skimage.draw.polygon` does) and divides the counts.
pub fn iou_raster(a: &GraspRect, b: &GraspRect) -> f64 {
    let (ca, cb) = (a.corners(), b.corners());
    let all = ca.iter().chain(cb.iter());
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for p in all {
        x0 = x0.min(p.0);
        y0 = y0.min(p.1);
        x1 = x1.max(p.0);
        y1 = y1.max(p.1);
    }
    let inside = |c: &[(f64, f64); 4], x: f64, y: f64| {
        let s = polygon_area(c).signum();
        (0..4).all(|i| {
            let (a, b) = (c[i], c[(i + 1) % 4]);
            s * ((b.0 - a.0) * (y - a.1) - (b.1 - a.1) * (x - a.0)) >= 0.0
        })
    };
    let (mut inter, mut union) = (0u64, 0u64);
    for y in y0.floor() as i64..=y1.ceil() as i64 {
        for x in x0.floor() as i64..=x1.ceil() as i64 {
            let (ia, ib) = (inside(&ca, x as f64, y as f64), inside(&cb, x as f64, y as f64));
            inter += (ia && ib) as u64;
            union += (ia || ib) as u64;
        }
    }
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

/// Which IoU to use for the success rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IouMode {
    /// Exact polygon intersection.
    Exact,
    /// Counted on the pixel grid (what rasterising evaluators do).
    Raster,
}

/// Does `pred` match a ground truth (IoU > 0.25 and |Δθ| < 30°)?
pub fn matches(pred: &GraspRect, gt: &GraspRect, mode: IouMode) -> bool {
    if angle_difference(pred.angle, gt.angle) >= ANGLE_THRESHOLD {
        return false;
    }
    let v = match mode {
        IouMode::Exact => iou(pred, gt),
        IouMode::Raster => iou_raster(pred, gt),
    };
    v > IOU_THRESHOLD
}

/// The success rule for one predicted grasp against all ground-truth rectangles of an image.
pub fn grasp_succeeds(pred: &Grasp, ground_truth: &[GraspRect], mode: IouMode) -> bool {
    let r = GraspRect::from_grasp(pred);
    pred.is_finite() && ground_truth.iter().any(|gt| matches(&r, gt, mode))
}

/// Ground-truth rectangles a width figure compares one prediction with ([`nearest_label_opening`]).
pub const NEAREST_LABELS: usize = 3;

/// The labelled opening a predicted grasp's width is compared with: the median opening of the
/// [`NEAREST_LABELS`] ground-truth rectangles whose centres lie nearest the grasp's centre (the
/// labels of one spot often disagree; the median resists a stray one). None without labels.
pub fn nearest_label_opening(pred: &Grasp, ground_truth: &[GraspRect]) -> Option<f64> {
    let (x, y) = (pred.x as f64, pred.y as f64);
    let mut by_distance: Vec<(f64, f64)> =
        ground_truth.iter().map(|r| ((r.cx - x).hypot(r.cy - y), r.length)).filter(|(d, _)| d.is_finite()).collect();
    by_distance.sort_by(|a, b| a.0.total_cmp(&b.0));
    median(by_distance.iter().take(NEAREST_LABELS).map(|&(_, l)| l).collect())
}

/// The median of `values` (the mean of the middle two for an even count); None when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// How predicted openings follow labelled ones over a test set: a width head that predicts the
/// training set's mean opening has slope and correlation near 0, and its ratio drifts with the
/// camera's height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WidthFit {
    /// Pairs measured.
    pub images: usize,
    /// Median of predicted / labelled opening.
    pub median_ratio: f64,
    /// Least-squares slope of predicted against labelled opening (1: follows the object).
    pub slope: f64,
    /// Pearson correlation of the two.
    pub correlation: f64,
}

/// [`WidthFit`] of `(labelled, predicted)` opening pairs; None for fewer than two pairs or
/// labels that do not vary.
pub fn width_fit(pairs: &[(f64, f64)]) -> Option<WidthFit> {
    let n = pairs.len();
    if n < 2 {
        return None;
    }
    let mean = |f: fn(&(f64, f64)) -> f64| pairs.iter().map(f).sum::<f64>() / n as f64;
    let (ml, mp) = (mean(|p| p.0), mean(|p| p.1));
    let (mut sll, mut spp, mut slp) = (0.0, 0.0, 0.0);
    for &(l, p) in pairs {
        sll += (l - ml) * (l - ml);
        spp += (p - mp) * (p - mp);
        slp += (l - ml) * (p - mp);
    }
    if sll <= 0.0 {
        return None;
    }
    let median_ratio = median(pairs.iter().map(|&(l, p)| p / l).collect())?;
    let correlation = if spp > 0.0 { slp / (sll * spp).sqrt() } else { 0.0 };
    Some(WidthFit { images: n, median_ratio, slope: slp / sll, correlation })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rectangle_maps_through_a_similarity_exactly() {
        let r = GraspRect { cx: 10.0, cy: 20.0, angle: 0.3, length: 40.0, jaw: 10.0 };
        assert_eq!(r.mapped(|x, y| Some((x, y))).unwrap(), r);
        // Scale 2, then rotate by 90° counter-clockwise on screen ((x, y) → (y, −x) with y down).
        let m = r.mapped(|x, y| Some((2.0 * y, -2.0 * x))).unwrap();
        assert!((m.cx - 40.0).abs() < 1e-9 && (m.cy + 20.0).abs() < 1e-9);
        assert!((m.length - 80.0).abs() < 1e-9 && (m.jaw - 20.0).abs() < 1e-9);
        assert!(angle_difference(m.angle, 0.3 + PI / 2.0) < 1e-9, "{}", m.angle);
        assert_eq!(r.mapped(|x, y| (x < 25.0).then_some((x, y))), None, "an end without an image");
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_compared_opening_is_the_median_of_the_three_nearest_labels() {
        let r = |cx: f64, length: f64| GraspRect { cx, cy: 50.0, angle: 0.0, length, jaw: 10.0 };
        let g = Grasp { x: 50.0, y: 50.0, angle: 0.0, width: 40.0, quality: 1.0 };
        // Nearest three: 30 (at 0 px), 60 (2 px), 20 (5 px); the 90 at 40 px is left out.
        let labels = [r(90.0, 90.0), r(52.0, 60.0), r(50.0, 30.0), r(45.0, 20.0)];
        assert_eq!(nearest_label_opening(&g, &labels), Some(30.0));
        assert_eq!(nearest_label_opening(&g, &labels[..2]), Some(75.0), "two labels: their mean");
        assert_eq!(nearest_label_opening(&g, &[]), None);
    }

    #[test]
    fn width_fit_separates_a_following_head_from_a_constant_one() {
        let labels = [20.0, 30.0, 40.0, 50.0];
        let following: Vec<(f64, f64)> = labels.iter().map(|&l| (l, 1.5 * l)).collect();
        let f = width_fit(&following).unwrap();
        assert!(
            (f.slope - 1.5).abs() < 1e-12
                && (f.correlation - 1.0).abs() < 1e-12
                && (f.median_ratio - 1.5).abs() < 1e-12
        );
        // Always 40 px: slope and correlation 0; ratios 2, 1.33, 1, 0.8 → median 1.1667.
        let constant: Vec<(f64, f64)> = labels.iter().map(|&l| (l, 40.0)).collect();
        let c = width_fit(&constant).unwrap();
        assert!(c.slope.abs() < 1e-12 && c.correlation == 0.0, "{c:?}");
        assert!((c.median_ratio - (4.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12, "{c:?}");
        assert_eq!(width_fit(&constant[..1]), None);
        assert_eq!(width_fit(&[(30.0, 20.0), (30.0, 40.0)]), None, "labels that do not vary");
    }

    #[test]
    fn outcomes_name_the_decision_that_failed() {
        // One ground truth: centre (50, 50), opening horizontal, 40 long, 20 jaw.
        let gt = [GraspRect { cx: 50.0, cy: 50.0, angle: 0.0, length: 40.0, jaw: 20.0 }];
        let g = |x: f32, y: f32, angle: f32, width: f32| Grasp { x, y, angle, width, quality: 0.9 };
        let o = |p: Grasp| outcome(Some(&p), &gt, IouMode::Exact);
        assert_eq!(o(g(52.0, 49.0, 0.1, 38.0)), Outcome::Success);
        // Centre 25 px off the centre line: outside the 20 px jaw, no overlap.
        assert_eq!(o(g(50.0, 75.0, 0.0, 40.0)), Outcome::Place);
        // 11 px off is outside the jaw too, but the rectangles still overlap by IoU 360/1240 =
        // 0.29: the metric's verdict comes first.
        assert_eq!(o(g(50.0, 61.0, 0.0, 40.0)), Outcome::Success);
        // Right place, 40° off.
        assert_eq!(o(g(50.0, 50.0, 40f32.to_radians(), 40.0)), Outcome::Angle);
        // Right place, 20° off (allowed), but a 4 px opening: IoU 4·2/800 = 0.01.
        assert_eq!(o(g(50.0, 50.0, 20f32.to_radians(), 4.0)), Outcome::Width);
        assert_eq!(o(g(f32::NAN, 50.0, 0.0, 40.0)), Outcome::NoGrasp);
        assert_eq!(outcome(None, &gt, IouMode::Exact), Outcome::NoGrasp);
        // An angle a half turn away is the same grasp.
        assert_eq!(o(g(50.0, 50.0, std::f32::consts::PI, 40.0)), Outcome::Success);
    }

    #[test]
    fn containment_follows_the_rotation() {
        // Opening along 90° (straight up on screen): 40 tall, 10 wide.
        let r = GraspRect { cx: 0.0, cy: 0.0, angle: PI / 2.0, length: 40.0, jaw: 10.0 };
        assert!(r.contains(0.0, 19.0) && r.contains(0.0, -19.0) && r.contains(4.9, 0.0));
        assert!(!r.contains(0.0, 21.0) && !r.contains(6.0, 0.0) && !r.contains(19.0, 0.0));
    }

    fn rect(cx: f64, cy: f64, angle: f64, length: f64, jaw: f64) -> GraspRect {
        GraspRect { cx, cy, angle, length, jaw }
    }

    #[test]
    fn identical_disjoint_and_known_overlaps() {
        let a = rect(50.0, 50.0, 0.3, 40.0, 20.0);
        assert!((iou(&a, &a) - 1.0).abs() < 1e-12);
        assert_eq!(iou(&a, &rect(200.0, 50.0, 0.3, 40.0, 20.0)), 0.0);
        // Two axis-aligned 10×10 squares shifted by 5 px: intersection 50, union 150.
        let s = rect(0.0, 0.0, 0.0, 10.0, 10.0);
        assert!((iou(&s, &rect(5.0, 0.0, 0.0, 10.0, 10.0)) - 1.0 / 3.0).abs() < 1e-12);
        // A square and itself rotated 45° about the same centre: the intersection is a regular
        // octagon of area 2(√2−1)s² for side s, so IoU = 2(√2−1)/(2 − 2(√2−1)) = (√2−1)/(2−√2).
        let r = rect(0.0, 0.0, PI / 4.0, 10.0, 10.0);
        let expected = (2f64.sqrt() - 1.0) / (2.0 - 2f64.sqrt());
        assert!((iou(&s, &r) - expected).abs() < 1e-9, "{} vs {expected}", iou(&s, &r));
        // A square rotated by 90° is the same square.
        assert!((iou(&s, &rect(0.0, 0.0, PI / 2.0, 10.0, 10.0)) - 1.0).abs() < 1e-9);
        // Contained: 10×10 inside 20×20 → 100/400.
        assert!((iou(&s, &rect(0.0, 0.0, 0.0, 20.0, 20.0)) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn angle_difference_is_modulo_pi() {
        assert!((angle_difference(80f64.to_radians(), -80f64.to_radians()) - 20f64.to_radians()).abs() < 1e-12);
        assert!(angle_difference(0.0, PI).abs() < 1e-12);
        assert!((angle_difference(0.0, PI / 2.0) - PI / 2.0).abs() < 1e-12);
    }

    #[test]
    fn success_rule_boundaries() {
        let gt = rect(50.0, 50.0, 0.0, 40.0, 20.0);
        let g = |angle: f32, width: f32, x: f32| Grasp { x, y: 50.0, angle, width, quality: 1.0 };
        assert!(grasp_succeeds(&g(0.0, 40.0, 50.0), &[gt], IouMode::Exact));
        assert!(grasp_succeeds(&g(29f32.to_radians(), 40.0, 50.0), &[gt], IouMode::Exact));
        assert!(!grasp_succeeds(&g(31f32.to_radians(), 40.0, 50.0), &[gt], IouMode::Exact));
        // Across the wrap: 89° vs −89° differ by 2°.
        let gt2 = rect(50.0, 50.0, 89f64.to_radians(), 40.0, 20.0);
        assert!(grasp_succeeds(&g(-89f32.to_radians(), 40.0, 50.0), &[gt2], IouMode::Exact));
        // Far away: IoU 0.
        assert!(!grasp_succeeds(&g(0.0, 40.0, 150.0), &[gt], IouMode::Exact));
        // Matching any of several ground truths is enough; none is never a success.
        assert!(grasp_succeeds(&g(0.0, 40.0, 150.0), &[gt, rect(150.0, 50.0, 0.0, 40.0, 20.0)], IouMode::Exact));
        assert!(!grasp_succeeds(&g(0.0, 40.0, 50.0), &[], IouMode::Exact));
        assert!(!grasp_succeeds(&g(f32::NAN, 40.0, 50.0), &[gt], IouMode::Exact));
    }

    #[test]
    fn corners_round_trip() {
        let r = rect(30.0, 40.0, 0.7, 50.0, 12.0);
        let back = GraspRect::from_corners(r.corners());
        assert!((back.cx - 30.0).abs() < 1e-9 && (back.cy - 40.0).abs() < 1e-9);
        assert!((back.angle - 0.7).abs() < 1e-6 && (back.length - 50.0).abs() < 1e-9 && (back.jaw - 12.0).abs() < 1e-9);
        // Opening direction (cos Φ, −sin Φ): a grasp at +90° opens straight up the screen.
        let up = rect(0.0, 0.0, PI / 2.0, 10.0, 2.0).corners();
        assert!((up[1].1 - up[0].1 + 10.0).abs() < 1e-9 && (up[1].0 - up[0].0).abs() < 1e-9);
    }

    proptest! {
        #[test]
        fn iou_is_symmetric_bounded_and_matches_raster(
            cx in 40.0f64..60.0, cy in 40.0f64..60.0, a1 in -1.6f64..1.6, a2 in -1.6f64..1.6,
            l1 in 15.0f64..60.0, l2 in 15.0f64..60.0, j1 in 8.0f64..30.0, j2 in 8.0f64..30.0,
        ) {
            let a = rect(50.0, 50.0, a1, l1, j1);
            let b = rect(cx, cy, a2, l2, j2);
            let (ab, ba) = (iou(&a, &b), iou(&b, &a));
            prop_assert!((ab - ba).abs() < 1e-9);
            prop_assert!((0.0..=1.0).contains(&ab));
            // Pixel counting of rectangles ≥ 8 px across agrees with the exact area within 0.08.
            prop_assert!((iou_raster(&a, &b) - ab).abs() < 0.08, "exact {} raster {}", ab, iou_raster(&a, &b));
        }
    }
}
