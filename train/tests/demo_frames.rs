//! The shipped default model (the one `edge/demo/demo.toml` runs) on the bundled demo frames:
//! every frame's top grasp is accepted by the paper's metric against that frame's own ground
//! truth (`edge/demo/frames/NNN_grasps.txt`, written with the frames by
//! `edge/examples/make_demo_frames.rs`), decoded exactly as the edge binary decodes.
//!
//! Issue 14 asks for all 16, and the shipped model (2026-11-30, width-weighted fine-tune) gives
//! all 16. Its predecessor missed 001–004: a bar whose grasp across it was predicted about twice
//! as wide as labelled, its width head predicting nearly one opening for every object
//! (RESULTS.md). No miss is allowed now.

use grasp_models::detector::GraspDetector;
use grasp_models::metric::{grasp_succeeds, IouMode};
use grasp_models::{load_backend, BackendKind, BackendOptions, GraspModelFile};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The model the demo runs, from the demo's own configuration (one source of truth).
fn demo_model() -> PathBuf {
    let demo = repo().join("edge/demo/demo.toml");
    let cfg: toml::Table = std::fs::read_to_string(&demo).unwrap().parse().unwrap();
    let path = cfg["model"]["path"].as_str().expect("demo.toml [model] path");
    demo.parent().unwrap().join(path)
}

#[test]
fn the_default_model_finds_an_accepted_grasp_in_every_demo_frame() {
    // `GRASP_DEMO_MODEL=candidate.onnx` scores a candidate instead (scripts/model-targets.sh).
    let model = std::env::var_os("GRASP_DEMO_MODEL").map_or_else(demo_model, PathBuf::from);
    let file = GraspModelFile::read(&model).unwrap();
    let backend = load_backend(BackendKind::Tract, &file, &BackendOptions { threads: Some(1) }).unwrap();
    let mut detector = GraspDetector::new(backend, None);
    let frames = repo().join("edge/demo/frames");
    let mut jpgs: Vec<PathBuf> = std::fs::read_dir(&frames)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    jpgs.sort();
    assert_eq!(jpgs.len(), 16, "the bundled frames");
    let mut failed = vec![];
    for jpg in &jpgs {
        let stem = jpg.file_stem().unwrap().to_string_lossy();
        let truth_path = frames.join(format!("{stem}_grasps.txt"));
        let truth =
            grasp_train::dataset::parse_jacquard(&truth_path, &std::fs::read_to_string(&truth_path).unwrap()).unwrap();
        assert!(!truth.is_empty(), "{}: no ground truth", truth_path.display());
        let img = image::open(jpg).unwrap().to_rgb8();
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (grasps, _) = detector.detect(img.as_raw(), w, h, 1).unwrap();
        match grasps.first() {
            Some(g) if grasp_succeeds(g, &truth, IouMode::Exact) => {}
            g => failed.push(format!("{stem}: {g:?}")),
        }
    }
    println!("demo frames: {} of 16 accepted ({})", 16 - failed.len(), model.display());
    assert!(
        failed.is_empty(),
        "{} of 16 demo frames without an accepted grasp ({}): {failed:#?}",
        failed.len(),
        model.display()
    );
}

/// The demo calibration must give the frames' own scale: a pixel at the image centre spans
/// `SCENE_MM / width` on the table (the frames are `grasp-train synth --size 480` scenes), or
/// every grasp the demo sends is placed and sized wrong by the ratio.
#[test]
fn the_demo_calibration_has_the_scale_the_frames_were_rendered_at() {
    let calib = grasp_calib::CalibrationFile::load(&repo().join("edge/demo/calibration.toml")).unwrap();
    let camera = calib.model();
    let (cx, cy) = (calib.intrinsics.cx, calib.intrinsics.cy);
    let a = camera.pixel_to_robot(cx, cy, None).unwrap();
    let b = camera.pixel_to_robot(cx + 100.0, cy, None).unwrap();
    let mm_per_px = (b - a).norm() / 100.0;
    let frame = image::open(repo().join("edge/demo/frames/001.jpg")).unwrap();
    let rendered = grasp_train::synth::SCENE_MM / frame.width() as f64;
    assert!(
        (mm_per_px / rendered - 1.0).abs() < 0.005,
        "demo calibration gives {mm_per_px:.4} mm/px at the table, the frames were rendered at {rendered:.4}"
    );
}
