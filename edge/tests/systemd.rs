//! The shipped systemd unit is valid for `systemd-analyze verify`, runs this binary's `run` and
//! `check-config` subcommands with flags it accepts, and its timeouts suit the runtime.

use std::path::Path;
use std::process::Command;

fn unit() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/grasp-edge.service")).unwrap()
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("systemd-analyze not installed: unit verification skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Point the unit at this build's binary (verify checks that ExecStart exists).
    let text = unit().replace("/usr/local/bin/grasp-edge", env!("CARGO_BIN_EXE_grasp-edge"));
    let path = dir.path().join("grasp-edge.service");
    std::fs::write(&path, text).unwrap();
    let out = Command::new("systemd-analyze").args(["verify", "--man=no", path.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Outside a booted systemd (containers, CI) verify may complain about the host; only lines about
    // our unit count.
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("grasp-edge.service")).collect();
    assert!(ours.is_empty(), "systemd-analyze verify:\n{stderr}");
}

#[test]
fn unit_commands_are_ones_the_binary_accepts() {
    let text = unit();
    for key in ["ExecStart=", "ExecStartPre="] {
        let line = text.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key}"));
        let args: Vec<&str> = line[key.len()..].split_whitespace().skip(1).collect();
        // The same subcommand and flags with --help must parse (exit 0), so a typo in the unit fails here.
        let sub = args[0];
        let out = Command::new(env!("CARGO_BIN_EXE_grasp-edge")).args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "`grasp-edge {sub}` is not a subcommand");
        let help = String::from_utf8_lossy(&out.stdout);
        for flag in args.iter().filter(|a| a.starts_with("--")) {
            assert!(help.contains(flag), "`grasp-edge {sub}` has no flag {flag}");
        }
    }
    assert!(
        text.contains("Type=notify") && text.contains("WatchdogSec="),
        "the runtime notifies READY and pings the watchdog"
    );
}

#[test]
fn install_script_lays_out_the_service_and_uninstalls_it() {
    let root = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install.sh");
    let run = |args: &[&str]| {
        let out = Command::new("bash")
            .arg(&script)
            .args(args)
            .args(["--root", root.path().to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    run(&["--bin", env!("CARGO_BIN_EXE_grasp-edge")]);
    let r = root.path();
    for f in [
        "usr/local/bin/grasp-edge",
        "usr/local/share/grasp-edge/models/ggcnn-p-rgb-224.onnx",
        "usr/local/share/grasp-edge/models/ggcnn-tv-rgb-224.onnx",
        "etc/systemd/system/grasp-edge.service",
        "etc/udev/rules.d/99-grasp-edge.rules",
        "etc/default/grasp-edge",
        "etc/grasp-edge/grasp-edge.toml",
    ] {
        assert!(r.join(f).is_file(), "{f} not installed");
    }
    assert_eq!(std::fs::read_to_string(r.join("etc/systemd/system/grasp-edge.service")).unwrap(), unit());
    // The installed example config names the installed model, and the unit's config path.
    let cfg = std::fs::read_to_string(r.join("etc/grasp-edge/grasp-edge.toml")).unwrap();
    assert!(cfg.contains("/usr/local/share/grasp-edge/models/ggcnn-p-rgb-224.onnx"));
    assert!(unit().contains("GRASP_EDGE_CONFIG=/etc/grasp-edge/grasp-edge.toml"));
    // The udev rule's name is the example config's port.
    assert!(
        cfg.contains("port = \"/dev/grasp-arm\"")
            && std::fs::read_to_string(r.join("etc/udev/rules.d/99-grasp-edge.rules"))
                .unwrap()
                .contains("SYMLINK+=\"grasp-arm\"")
    );
    // A second install keeps the operator's config.
    std::fs::write(r.join("etc/grasp-edge/grasp-edge.toml"), "# edited\n").unwrap();
    run(&["--bin", env!("CARGO_BIN_EXE_grasp-edge")]);
    assert_eq!(std::fs::read_to_string(r.join("etc/grasp-edge/grasp-edge.toml")).unwrap(), "# edited\n");
    run(&["--uninstall"]);
    assert!(!r.join("usr/local/bin/grasp-edge").exists() && !r.join("etc/systemd/system/grasp-edge.service").exists());
    assert!(r.join("etc/grasp-edge/grasp-edge.toml").exists(), "configuration kept");
    run(&["--uninstall", "--purge"]);
    assert!(!r.join("etc/grasp-edge").exists());
}
