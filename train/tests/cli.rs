//! `grasp-train` end to end on a tiny synthetic set: synth → fit (with resume) → eval → cv, and
//! the refusals a user meets first.

use grasp_models::onnx::GraspModelFile;
use std::path::Path;
use std::process::{Command, Output};

fn grasp_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_grasp-train")).args(args).env("RUST_LOG", "warn").output().unwrap()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn synth(dir: &Path, count: usize) -> String {
    let out = dir.join("synth");
    ok(grasp_train(&[
        "synth",
        "--out",
        out.to_str().unwrap(),
        "--count",
        &count.to_string(),
        "--seed",
        "2",
        "--size",
        "64",
    ]));
    format!("jacquard:{}", out.display())
}

#[test]
fn fit_resume_eval() {
    let d = tempfile::tempdir().unwrap();
    let data = synth(d.path(), 30);
    let run = d.path().join("run");
    let fit = |epochs: &str, resume: bool| {
        let mut a = vec![
            "fit",
            "--dataset",
            &data,
            "--arch",
            "mtgcnn",
            "--aux",
            "depth",
            "--loss",
            "positional",
            "--epochs",
            epochs,
            "--input-size",
            "64",
            "--batch-size",
            "4",
            "--out",
            run.to_str().unwrap(),
            "--threads",
            "1",
        ];
        if resume {
            a.push("--resume");
        }
        ok(grasp_train(&a))
    };
    let out = fit("2", false);
    assert!(out.contains("best epoch"), "{out}");
    for f in ["metrics.csv", "metrics.json", "val_success.png", "last.ot", "best.ot", "model.onnx", "state.json"] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.lines().nth(1).unwrap().split(',').nth(7).unwrap() == "1.000",
        "every synthetic sample has depth: {csv}"
    );
    fit("3", true);
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "resume continues at epoch 3: {csv}");
    assert!(csv.lines().nth(3).unwrap().starts_with("3,"));

    let model = GraspModelFile::read(&run.join("model.onnx")).unwrap();
    assert_eq!(model.info.input_size, 64);
    assert!(!model.info.has_aux_output);
    // 300 mm of table in 64 px, seen through zooms of 1 to 1.25: 4.6875 / √1.25 mm per pixel.
    let m = model.info.mm_per_px.expect("a synthetic set declares its scale");
    assert!((m as f64 - 300.0 / 64.0 / 1.25f64.sqrt()).abs() < 1e-4, "{m}");
    assert_eq!(model.info.image_fit, grasp_models::contract::ImageFit::CenterCrop);
    let prov: serde_json::Value = serde_json::from_str(&model.info.provenance).unwrap();
    assert_eq!(prov["config"]["loss"], "positional");
    assert!(prov["best_epoch"].as_u64().unwrap() >= 1);

    // Fine-tuning from that model with a wide zoom: the scale it declares is centred on the
    // range's geometric centre √(0.6·1.7), and eval's rescale test runs on it.
    let tuned = d.path().join("tuned");
    let out = ok(grasp_train(&[
        "fit",
        "--dataset",
        &data,
        "--arch",
        "mtgcnn",
        "--aux",
        "depth",
        "--epochs",
        "1",
        "--input-size",
        "64",
        "--batch-size",
        "4",
        "--threads",
        "1",
        "--zoom",
        "0.6,1.7",
        "--ema",
        "0.9",
        "--val-rescale",
        "0.7,1",
        "--init-from",
        run.join("model.onnx").to_str().unwrap(),
        "--out",
        tuned.to_str().unwrap(),
    ]));
    assert!(out.contains("best epoch 1"), "{out}");
    let t = GraspModelFile::read(&tuned.join("model.onnx")).unwrap();
    let m = t.info.mm_per_px.unwrap() as f64;
    assert!((m - 300.0 / 64.0 / (0.6f64 * 1.7).sqrt()).abs() < 1e-4, "{m}");
    let prov: serde_json::Value = serde_json::from_str(&t.info.provenance).unwrap();
    assert!(prov["config"]["init_from"].as_str().unwrap().ends_with("model.onnx"));
    // --ema validates and exports the weight average; the trained weights stay for resuming.
    assert_eq!(prov["config"]["ema"], 0.9);
    assert!(tuned.join("last-ema.ot").exists() && tuned.join("last.ot").exists());
    // --val-rescale validates every validation image once per factor.
    assert_eq!(prov["config"]["val_rescale"], serde_json::json!([0.7, 1.0]));
    let val_images = |run: &std::path::Path| -> usize {
        let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        csv.lines().nth(1).unwrap().split(',').nth(9).unwrap().parse().unwrap()
    };
    assert_eq!(val_images(&tuned), 2 * val_images(&run));
    let out = ok(grasp_train(&[
        "eval",
        "--model",
        tuned.join("model.onnx").to_str().unwrap(),
        "--dataset",
        &data,
        "--rescale",
        "0.7",
        "--backend",
        "tract",
    ]));
    assert!(out.contains("centre crop, rescaled x0.7") && out.lines().last().unwrap().ends_with("/30)"), "{out}");

    let exported = d.path().join("exported.onnx");
    ok(grasp_train(&["export", "--run", run.to_str().unwrap(), "--out", exported.to_str().unwrap(), "--with-aux"]));
    let e = GraspModelFile::read(&exported).unwrap();
    assert!(e.info.has_aux_output && e.info.aux_task == Some(grasp_models::AuxTask::Depth));
    let prov: serde_json::Value = serde_json::from_str(&e.info.provenance).unwrap();
    assert_eq!(prov["epochs_done"], 3);
    assert_eq!(prov["test_samples"], 2);

    let out = ok(grasp_train(&[
        "eval",
        "--model",
        run.join("model.onnx").to_str().unwrap(),
        "--dataset",
        &data,
        "--split",
        "test",
        "--backend",
        "tract",
    ]));
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("success: ") && last.ends_with("/2)"), "{out}");
    // With the argmax every test image has a grasp. The two test images are views of one object
    // with the same labels, so the figures exist only if those labels differ: null or both.
    let out = ok(grasp_train(&[
        "eval",
        "--model",
        run.join("model.onnx").to_str().unwrap(),
        "--dataset",
        &data,
        "--split",
        "test",
        "--argmax",
        "--json",
    ]));
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let widths = summary.get("widths").unwrap_or_else(|| panic!("no widths key: {out}"));
    assert!(widths.is_null() || widths["images"] == 2, "{out}");
    let ann = d.path().join("ann");
    let out = ok(grasp_train(&[
        "eval",
        "--model",
        run.join("model.onnx").to_str().unwrap(),
        "--dataset",
        &data,
        "--split",
        "val",
        "--json",
        "--annotate",
        ann.to_str().unwrap(),
    ]));
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // 15 objects in 5 groups: the held-out 3 objects split 2 (validation, 4 images) / 1 (test, 2).
    assert_eq!(lines.len(), 5, "4 images + summary: {out}");
    assert_eq!(lines[4]["images"], 4);
    assert_eq!(std::fs::read_dir(&ann).unwrap().count(), 4);

    // A posed camera's set and its calibration: the table view at the model's scale.
    let posed = d.path().join("posed");
    let out = ok(grasp_train(&[
        "synth",
        "--out",
        posed.to_str().unwrap(),
        "--count",
        "2",
        "--camera-height-mm",
        "600",
        "--tilt-deg",
        "30",
        "--image",
        "160x120",
        "--focal-px",
        "112.5",
    ]));
    assert!(out.contains("tilted 30°"), "{out}");
    let calib = grasp_calib::CalibrationFile::load(&posed.join("calibration.toml")).unwrap();
    assert_eq!((calib.image.width, calib.image.height), (160, 120));
    let model_path = run.join("model.onnx");
    let eval_posed = |calibration: &Path| {
        grasp_train(&[
            "eval",
            "--model",
            model_path.to_str().unwrap(),
            "--dataset",
            &format!("synth:{}", posed.display()),
            "--backend",
            "tract",
            "--calibration",
            calibration.to_str().unwrap(),
        ])
    };
    let out = ok(eval_posed(&posed.join("calibration.toml")));
    assert!(out.contains("table view at 4.193 mm/px") && out.ends_with("/2)\n"), "{out}");
    // A calibration of another camera size is refused, naming the image.
    let other = d.path().join("other.toml");
    let mut wrong = calib.clone();
    wrong.image.width = 320;
    wrong.intrinsics.cx = 159.5;
    std::fs::write(&other, wrong.to_toml()).unwrap();
    let o = eval_posed(&other);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("is 160x120") && err.contains("320x120"), "{err}");
    // The pose table: six poses, both columns, the spread.
    let out =
        ok(grasp_train(&["poses", "--model", model_path.to_str().unwrap(), "--count", "1", "--backend", "tract"]));
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("| 350 mm") || l.starts_with("| 600 mm") || l.starts_with("| 900 mm"))
            .count(),
        6,
        "{out}"
    );
    assert!(out.contains("| **spread** (max − min) |"), "{out}");
}

#[test]
fn cv_runs_at_toy_scale() {
    let d = tempfile::tempdir().unwrap();
    let data = synth(d.path(), 20);
    let out = d.path().join("cv");
    let out_s = out.to_str().unwrap();
    let common = [
        "--dataset",
        &data,
        "--epochs",
        "1",
        "--input-size",
        "32",
        "--folds",
        "2",
        "--batch-size",
        "8",
        "--threads",
        "1",
    ];
    let table = ok(grasp_train(&[&["cv", "--out", out_s][..], &common].concat()));
    assert_eq!(table.lines().filter(|l| l.starts_with("| GG-CNN") || l.starts_with("| MTG-CNN")).count(), 6, "{table}");
    assert!(table.contains("| MTG-CNN_p | Depth | positional |"));
    assert!(out.join("table.md").exists() && out.join("fig6_val_success.png").exists() && out.join("cv.json").exists());
    // Synthetic scenes carry depth and mask: every MTG row trained with its auxiliary target.
    for l in table.lines().filter(|l| l.starts_with("| MTG-CNN")) {
        assert!(l.contains("| 1.00 |"), "aux_target_fraction: {l}");
    }
    // The cells, as a Slurm array would run them: the plan lists 12 done cells; a lost cell is
    // named by --collect, rerun alone by its number, and the table is whole again.
    let plan = ok(grasp_train(&["cv", "--plan", "--folds", "2", "--out", out_s]));
    assert_eq!(plan.lines().filter(|l| l.contains(" done ")).count(), 12, "{plan}");
    let lost = out.join("mtgcnn-depth-plain/fold1");
    std::fs::remove_file(lost.join("cell.json")).unwrap();
    let o = grasp_train(&["cv", "--collect", "--folds", "2", "--out", out_s]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("1 of 12 cells") && err.contains("9 (MTG-CNN (Depth, plain) fold 1)"), "{err}");
    let mut args = vec!["cv", "--cell", "9", "--out", out_s];
    args.extend_from_slice(&common);
    let one = ok(grasp_train(&args));
    assert!(one.contains("MTG-CNN (Depth, plain) fold 1: test success"), "{one}");
    let again = ok(grasp_train(&["cv", "--collect", "--folds", "2", "--out", out_s]));
    assert_eq!(again.lines().filter(|l| l.starts_with("| GG-CNN") || l.starts_with("| MTG-CNN")).count(), 6, "{again}");
    let o = grasp_train(&["cv", "--cell", "12", "--out", out_s, "--dataset", &data, "--folds", "2"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("there are 12 cells"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn bad_inputs_are_named() {
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = grasp_train(&[
        "fit",
        "--dataset",
        &format!("cornell:{}", empty.display()),
        "--out",
        d.path().join("r").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no usable samples"), "{}", String::from_utf8_lossy(&o.stderr));

    // A corrupt image and a bad annotation line are named with their file (and line).
    let c = d.path().join("cornell");
    std::fs::create_dir(&c).unwrap();
    std::fs::write(c.join("pcd0001_1r.png"), b"not a png").unwrap();
    std::fs::write(c.join("pcd0001_1cpos.txt"), "1 2\n3 4\n5 6\n7 8\n").unwrap();
    image::RgbImage::new(40, 40).save(c.join("pcd0002_1r.png")).unwrap();
    std::fs::write(c.join("pcd0002_1cpos.txt"), "1 2\n3 4\n5 six\n7 8\n").unwrap();
    let model = d.path().join("m.onnx");
    ok(grasp_train(&["init", "--input-size", "32", "--out", model.to_str().unwrap()]));
    let o = grasp_train(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        &format!("cornell:{}", c.display()),
        "--backend",
        "tract",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("pcd0001_1r.png") && err.contains("cannot decode image"), "{err}");
    std::fs::remove_file(c.join("pcd0001_1r.png")).unwrap();
    let o = grasp_train(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        &format!("cornell:{}", c.display()),
        "--backend",
        "tract",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("pcd0002_1cpos.txt:3"), "{err}");

    // Option values out of range are named before anything runs.
    let o = grasp_train(&["fit", "--dataset", &format!("cornell:{}", c.display()), "--zoom", "1.7,0.6", "--out", "x"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--zoom") && err.contains("0 < MIN <= MAX"), "{err}");
    let o = grasp_train(&["eval", "--model", model.to_str().unwrap(), "--dataset", "cornell:x", "--rescale", "0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--rescale") && err.contains("factor > 0"), "{err}");
}

#[test]
fn a_diverging_run_stops_with_a_message() {
    let d = tempfile::tempdir().unwrap();
    let data = synth(d.path(), 20);
    let run = d.path().join("run");
    let o = grasp_train(&[
        "fit",
        "--dataset",
        &data,
        "--epochs",
        "3",
        "--input-size",
        "32",
        "--learning-rate",
        "1e30",
        "--out",
        run.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a learning rate of 1e30 must diverge");
    assert!(err.contains("the loss became") && err.contains("last good checkpoint"), "{err}");
}

/// `scripts/slurm-cv.sh` submits one array task per cell and a collect job after the array, with
/// the training options passed through (a fake `sbatch` records what would be submitted).
#[test]
fn slurm_script_submits_one_array_task_per_cell_then_the_collect() {
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = d.path().join("sbatch.log");
    let fake = format!("#!/bin/sh\necho \"$@\" >> {}\necho $(( $(wc -l < {}) + 41 ))\n", log.display(), log.display());
    std::fs::write(bin.join("sbatch"), fake).unwrap();
    std::fs::set_permissions(bin.join("sbatch"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/slurm-cv.sh");
    let out = d.path().join("table 1");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let o = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .args(["--dataset", "jacquard:/data/Jacquard", "--epochs", "40", "--folds", "3"])
        .env("PATH", path)
        .env("GRASP_TRAIN", env!("CARGO_BIN_EXE_grasp-train"))
        .output()
        .unwrap();
    let stdout = ok(o);
    assert!(stdout.contains("submitted 18 cells as array job 42 and the table as job 43"), "{stdout}");
    let submitted = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = submitted.lines().collect();
    assert_eq!(lines.len(), 2, "{submitted}");
    assert!(lines[0].contains("--array=0-17") && lines[0].contains("--gres=gpu:1"), "{}", lines[0]);
    assert!(
        lines[0].contains("cv --out table\\ 1") || lines[0].contains("table\\ 1"),
        "paths are quoted: {}",
        lines[0]
    );
    assert!(lines[0].contains("--epochs 40") && lines[0].contains("--cell $SLURM_ARRAY_TASK_ID"), "{}", lines[0]);
    assert!(lines[1].contains("--dependency=afterany:42") && lines[1].contains("--collect --folds 3"), "{}", lines[1]);
    let o = Command::new("bash").arg(&script).arg(&out).args(["--folds", "9"]).output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--folds must be 1..5"));
}
