//! The trained network and the exported ONNX cannot drift: tch's forward equals tract's run of the
//! exported file; `grasp-train init` writes contract-conforming, seed-deterministic models.

use grasp_models::arch::{Architecture, AuxTask};
use grasp_models::contract::ModelInfo;
use grasp_models::onnx::{export, GraspModelFile};
use grasp_models::{load_backend, BackendKind, BackendOptions, GraspMaps};
use grasp_train::net::{named_weights, GraspNet};
use std::process::Command;
use tch::{Device, Kind, Tensor};

#[test]
fn tch_forward_equals_tract_on_the_exported_file() {
    let size = 64;
    for arch in [Architecture::ggcnn(), Architecture::mtgcnn(AuxTask::Depth)] {
        tch::manual_seed(42);
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let net = GraspNet::new(&vs, &arch);
        let info = ModelInfo::new(arch.kind, arch.aux_task(), size);
        let file = GraspModelFile::from_bytes(
            &export(&arch, &named_weights(&vs).unwrap(), &info, &grasp_models::onnx::ExportOptions::with_aux(true))
                .unwrap(),
        )
        .unwrap();
        let x = Tensor::rand([1, 3, size as i64, size as i64], (Kind::Float, Device::Cpu)) - 0.5;
        let out = tch::no_grad(|| net.forward(&x));
        let input = Vec::<f32>::try_from(x.flatten(0, -1)).unwrap();
        let mut maps = GraspMaps::zeros(size, true);
        load_backend(BackendKind::Tract, &file, &BackendOptions::default()).unwrap().infer(&input, &mut maps).unwrap();
        let mut pairs =
            vec![(&out.q, &maps.q), (&out.cos, &maps.cos), (&out.sin, &maps.sin), (&out.width, &maps.width)];
        if let Some(a) = &out.aux {
            pairs.push((a, maps.aux.as_ref().unwrap()));
        }
        for (t, m) in pairs {
            let v = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
            let d = v.iter().zip(m).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(d <= 1e-4, "{}: tch and tract differ by {d}", arch.kind);
        }
    }
}

fn init(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_grasp-train")).arg("init").args(args).output().unwrap()
}

#[test]
fn init_writes_valid_deterministic_models() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    for (name, seed) in [("a.onnx", "3"), ("b.onnx", "3"), ("c.onnx", "4")] {
        let o = init(&["--arch", "mtgcnn", "--aux", "mask", "--seed", seed, "--input-size", "96", "--out", &p(name)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let a = std::fs::read(p("a.onnx")).unwrap();
    assert_eq!(a, std::fs::read(p("b.onnx")).unwrap(), "same seed, same file");
    assert_ne!(a, std::fs::read(p("c.onnx")).unwrap(), "another seed, other weights");
    let m = GraspModelFile::from_bytes(&a).unwrap();
    assert_eq!(m.info.architecture, grasp_models::ArchKind::MtgCnn);
    assert_eq!(m.info.aux_task, Some(AuxTask::Mask));
    assert_eq!(m.info.input_size, 96);
    assert!(!m.info.has_aux_output, "the aux branch is left out by default");
    assert!(m.info.provenance.contains("seed 3"));

    let o = init(&["--arch", "ggcnn", "--aux", "depth", "--out", &p("x.onnx")]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no auxiliary branch"));
    let o = init(&["--arch", "resnet", "--out", &p("x.onnx")]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("resnet"));
}
