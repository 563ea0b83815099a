//! The calibration tool uses the robot's own device drivers without the inference stack: neither
//! the model core nor tract nor libtorch is compiled into it (`cargo tree`, normal dependencies).

#[test]
fn grasp_calib_cli_depends_on_neither_tract_nor_tch() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--manifest-path",
            manifest,
            "-p",
            "grasp-calib-cli",
        ])
        .output()
        .expect("running cargo tree");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains(&"grasp-devices") && crates.contains(&"serialport"), "the scan sees the drivers:\n{tree}");
    for banned in ["tract-onnx", "tract-core", "tch", "torch-sys", "grasp-models", "grasp-edge"] {
        assert!(!crates.contains(&banned), "grasp-calib-cli depends on {banned}:\n{tree}");
    }
}
