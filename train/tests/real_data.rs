//! The loaders on the real Cornell and Jacquard samples in `../shared/data` (never copied into the
//! repository). Skipped, with a message, where that directory is absent (e.g. CI).

use grasp_models::metric::angle_difference;
use grasp_train::dataset::{load, scan, DatasetKind, DatasetSpec};
use std::path::PathBuf;

fn shared(sub: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data").join(sub);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: {} not found (real data lives beside the checkout in ../shared)", p.display());
        None
    }
}

#[test]
fn cornell_crops_load() {
    let Some(dir) = shared("cornell-crops") else { return };
    let refs = scan(&DatasetSpec { kind: DatasetKind::Cornell, path: dir }).unwrap();
    assert_eq!(refs.len(), 1202);
    let scenes: std::collections::HashSet<_> = refs.iter().map(|r| r.object_id.clone()).collect();
    assert_eq!(scenes.len(), 601, "two crops per scene share a scene id");
    for r in refs.iter().step_by(97) {
        let s = load(r).unwrap();
        assert_eq!((s.width, s.height), (224, 224));
        assert!(!s.rects.is_empty() && s.rects.len() <= 25);
        for g in &s.rects {
            // Angles were quantised to 10° by the preprocessing.
            let deg = g.angle.to_degrees();
            assert!((deg / 10.0 - (deg / 10.0).round()).abs() < 0.15, "{} angle {deg}", r.rgb.display());
            assert!(g.length > 1.0 && g.jaw > 1.0);
        }
    }
}

#[test]
fn jacquard_samples_load() {
    let Some(dir) = shared("jacquard-samples") else { return };
    let refs = scan(&DatasetSpec { kind: DatasetKind::Jacquard, path: dir }).unwrap();
    assert_eq!(refs.len(), 8);
    let objects: std::collections::HashSet<_> = refs.iter().map(|r| r.object_id.clone()).collect();
    assert_eq!(objects.len(), 2);
    let s = load(&refs[0]).unwrap();
    assert_eq!((s.width, s.height), (1024, 1024));
    let depth = s.depth.as_ref().unwrap();
    let (lo, hi) = depth.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(lo > 0.5 && hi < 3.0 && hi > lo, "perfect depth in metres: {lo}..{hi}");
    let mask = s.mask.as_ref().unwrap();
    let on = mask.iter().filter(|&&m| m > 0.5).count();
    assert!(on > 1000 && on < 1024 * 1024 / 2);
    // First row of 0_1a9f…_grasps.txt: 470.14815;253.89551;68.2615;25.5;25.6211 (θ clockwise).
    assert!(refs[0].rgb.to_string_lossy().contains("0_1a9fa4c2"));
    let g = &s.rects[0];
    assert!((g.cx - 470.14815).abs() < 1e-6 && (g.cy - 253.89551).abs() < 1e-6 && g.length == 25.5 && g.jaw == 25.6211);
    assert!(angle_difference(g.angle, -68.2615f64.to_radians()) < 1e-6);
    // Grasp centres lie on the object.
    for g in &s.rects {
        let i = g.cy.round() as usize * 1024 + g.cx.round() as usize;
        assert!(mask[i] > 0.5 || depth[i] < hi - 0.001, "grasp centre off the object");
    }
}
