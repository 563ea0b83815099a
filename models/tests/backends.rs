//! Backends against each other and against the contract: tract vs torch parity on random weights
//! and inputs, onnxruntime as the outside referee, and refusals of bad models.

use grasp_models::arch::{Architecture, AuxTask};
use grasp_models::contract::ModelInfo;
use grasp_models::onnx::{export, ExportOptions, GraspModelFile, NamedWeights, UpsampleForm};
use grasp_models::{load_backend, BackendKind, BackendOptions, GraspMaps};

fn model(arch: &Architecture, size: usize, seed: u64, with_aux: bool) -> GraspModelFile {
    model_with(arch, size, seed, ExportOptions { include_aux: with_aux, upsample: UpsampleForm::default() })
}

fn model_with(arch: &Architecture, size: usize, seed: u64, opts: ExportOptions) -> GraspModelFile {
    let info = ModelInfo::new(arch.kind, arch.aux_task(), size);
    let bytes = export(arch, &NamedWeights::random(arch, seed), &info, &opts).unwrap();
    GraspModelFile::from_bytes(&bytes).unwrap()
}

/// Deterministic pseudo-random input in [-0.5, 0.5).
fn input(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s as f32 / u32::MAX as f32 - 0.5
        })
        .collect()
}

fn run(kind: BackendKind, file: &GraspModelFile, x: &[f32]) -> GraspMaps {
    let mut b = load_backend(kind, file, &BackendOptions::default()).unwrap();
    let mut maps = GraspMaps::zeros(file.info.input_size, false);
    b.infer(x, &mut maps).unwrap();
    maps
}

#[test]
fn tract_runs_the_exported_graph() {
    let arch = Architecture::ggcnn();
    let f = model(&arch, 64, 7, false);
    let x = input(3 * 64 * 64, 1);
    let a = run(BackendKind::Tract, &f, &x);
    assert_eq!(a.q.len(), 64 * 64);
    assert!(a.q.iter().chain(&a.cos).chain(&a.sin).chain(&a.width).all(|v| v.is_finite()));
    // Not constant: the network really computed something input-dependent.
    let b = run(BackendKind::Tract, &f, &input(3 * 64 * 64, 2));
    assert!(a.q.iter().zip(&b.q).any(|(p, q)| (p - q).abs() > 1e-4));
    // Same input → same output (deterministic).
    assert_eq!(a, run(BackendKind::Tract, &f, &x));
}

#[test]
fn every_upsampling_form_computes_the_same_function() {
    let arch = Architecture::mtgcnn(AuxTask::Depth);
    let files: Vec<GraspModelFile> = UpsampleForm::ALL
        .iter()
        .map(|&upsample| model_with(&arch, 64, 3, ExportOptions { include_aux: true, upsample }))
        .collect();
    let ops =
        |f: &GraspModelFile| f.proto.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.clone()).collect::<Vec<_>>();
    for (f, form) in files.iter().zip(UpsampleForm::ALL) {
        let carrier = form.carrier_op();
        assert!(ops(f).iter().any(|o| o == carrier), "{carrier} missing from {:?}", ops(f));
        assert_eq!(f.upsample_form(), Some(form), "the reader tells the form the exporter wrote");
    }
    let x = input(3 * 64 * 64, 5);
    let reference = run(BackendKind::Tract, &files[0], &x);
    for (f, form) in files.iter().zip(UpsampleForm::ALL).skip(1) {
        let b = run(BackendKind::Tract, f, &x);
        for (p, q) in [
            (&reference.q, &b.q),
            (&reference.cos, &b.cos),
            (&reference.sin, &b.sin),
            (&reference.width, &b.width),
            (reference.aux.as_ref().unwrap(), b.aux.as_ref().unwrap()),
        ] {
            let d = p.iter().zip(q.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(d <= 1e-5, "{} differs from Resize by {d}", form.label());
        }
    }
}

#[test]
fn wrong_input_length_is_refused() {
    let f = model(&Architecture::ggcnn(), 32, 1, false);
    let mut b = load_backend(BackendKind::Tract, &f, &BackendOptions::default()).unwrap();
    let mut maps = GraspMaps::zeros(32, false);
    let e = b.infer(&vec![0.0; 3 * 31 * 32], &mut maps).unwrap_err().to_string();
    assert!(e.contains("2976") && e.contains("3072"), "{e}");
}

#[cfg(not(feature = "torch"))]
#[test]
fn torch_backend_absent_is_a_typed_error_and_auto_falls_back() {
    let f = model(&Architecture::ggcnn(), 32, 1, false);
    let e = load_backend(BackendKind::Torch, &f, &BackendOptions::default()).err().unwrap();
    assert!(matches!(e, grasp_models::BackendError::TorchNotCompiled));
    assert_eq!(load_backend(BackendKind::Auto, &f, &BackendOptions::default()).unwrap().name(), "tract");
}

#[cfg(feature = "torch")]
mod torch {
    use super::*;
    use grasp_models::BackendError;
    use prost::Message;

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn tract_and_torch_cpu_agree_on_random_models() {
        for (arch, size, seed, upsample) in [
            (Architecture::ggcnn(), 96, 11, UpsampleForm::Resize),
            (Architecture::ggcnn(), 96, 11, UpsampleForm::PadConvTranspose),
            (Architecture::ggcnn(), 96, 11, UpsampleForm::DepthwisePhases),
            (Architecture::mtgcnn(AuxTask::Depth), 64, 12, UpsampleForm::PadConvTranspose),
            (Architecture::mtgcnn(AuxTask::Mask), 300, 13, UpsampleForm::default()),
        ] {
            let f = model_with(&arch, size, seed, ExportOptions { include_aux: true, upsample });
            for input_seed in [1, 2] {
                let x = input(3 * size * size, input_seed + seed as u32);
                let a = run(BackendKind::Tract, &f, &x);
                let b = run(BackendKind::Torch, &f, &x);
                for (name, p, q) in
                    [("q", &a.q, &b.q), ("cos", &a.cos, &b.cos), ("sin", &a.sin, &b.sin), ("width", &a.width, &b.width)]
                {
                    let d = max_diff(p, q);
                    assert!(d <= 1e-4, "{} size {size}: output {name} differs by {d}", arch.kind);
                }
                if arch.aux.is_some() {
                    let d = max_diff(a.aux.as_ref().unwrap(), b.aux.as_ref().unwrap());
                    assert!(d <= 1e-4, "aux differs by {d}");
                }
            }
        }
    }

    #[test]
    fn unsupported_op_is_named() {
        let f = model(&Architecture::ggcnn(), 32, 1, false);
        let mut p = f.proto.clone();
        let n = p.graph.as_mut().unwrap().node.iter_mut().find(|n| n.op_type == "Relu").unwrap();
        n.op_type = "Softplus".into();
        let name = n.name.clone();
        let f2 = GraspModelFile::from_bytes(&p.encode_to_vec()).unwrap();
        match load_backend(BackendKind::Torch, &f2, &BackendOptions::default()) {
            Err(BackendError::UnsupportedOp { op, node }) => {
                assert_eq!(op, "Softplus");
                assert_eq!(node, name);
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("an unsupported op was accepted"),
        }
    }

    #[test]
    fn auto_uses_torch_only_on_cuda() {
        let f = model(&Architecture::ggcnn(), 32, 1, false);
        let b = load_backend(BackendKind::Auto, &f, &BackendOptions::default()).unwrap();
        let expected =
            if grasp_models::backend::torch::best_device() == tch::Device::Cpu { "tract" } else { "torch-cuda" };
        assert_eq!(b.name(), expected);
    }
}

#[test]
fn a_model_written_again_in_another_form_keeps_its_function_and_metadata() {
    let arch = Architecture::mtgcnn(AuxTask::Mask);
    let old = model_with(&arch, 64, 21, ExportOptions { include_aux: true, upsample: UpsampleForm::Resize });
    let bytes = grasp_models::onnx::reexport(&old, UpsampleForm::DepthwisePhases).unwrap();
    let new = GraspModelFile::from_bytes(&bytes).unwrap();
    assert_eq!(new.info, old.info);
    assert_eq!(new.output_names(), old.output_names());
    let ops: Vec<String> = new.proto.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.clone()).collect();
    assert!(ops.contains(&"DepthToSpace".to_string()) && !ops.contains(&"Resize".to_string()), "{ops:?}");
    let x = input(3 * 64 * 64, 9);
    let (a, b) = (run(BackendKind::Tract, &old, &x), run(BackendKind::Tract, &new, &x));
    let d = a.q.iter().chain(&a.width).zip(b.q.iter().chain(&b.width)).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
    assert!(d <= 1e-5, "re-export changed the outputs by {d}");
    // A file whose weights are missing says which one.
    let mut broken = old.proto.clone();
    broken.graph.as_mut().unwrap().initializer.retain(|t| t.name != "shared.conv2.weight");
    let e = grasp_models::NamedWeights::from_model(&broken, &arch).unwrap_err().to_string();
    assert!(e.contains("shared.conv2.weight"), "{e}");
}
