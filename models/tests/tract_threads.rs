//! `--threads N` on the tract backend means N threads: the process gains no thread for one, and
//! gains its pool for two. (tract hands a one-thread pool's work to rayon's global pool, one
//! thread per core, so `--threads 1` used to run on every core unnoticed.) Its own test binary:
//! it counts this process's threads, which no other test may start meanwhile.

use grasp_models::arch::Architecture;
use grasp_models::contract::ModelInfo;
use grasp_models::onnx::{export, ExportOptions, GraspModelFile, NamedWeights};
use grasp_models::{load_backend, BackendKind, BackendOptions, GraspMaps};

#[cfg(target_os = "linux")]
fn threads_of_this_process() -> usize {
    std::fs::read_dir("/proc/self/task").expect("/proc/self/task").count()
}

#[cfg(target_os = "linux")]
#[test]
fn one_thread_runs_on_the_calling_thread_and_two_start_a_pool() {
    let arch = Architecture::ggcnn();
    // Big enough that tract splits its matrix products when it may (thousands of panels).
    let size = 160;
    let info = ModelInfo::new(arch.kind, arch.aux_task(), size);
    let bytes = export(&arch, &NamedWeights::random(&arch, 3), &info, &ExportOptions::default()).unwrap();
    let file = GraspModelFile::from_bytes(&bytes).unwrap();
    let x = vec![0.25f32; 3 * size * size];
    let mut maps = GraspMaps::zeros(size, false);

    let before = threads_of_this_process();
    let mut one = load_backend(BackendKind::Tract, &file, &BackendOptions { threads: Some(1) }).unwrap();
    for _ in 0..3 {
        one.infer(&x, &mut maps).unwrap();
    }
    assert_eq!(threads_of_this_process(), before, "one inference thread started others");
    let q_one = maps.q.clone();

    let mut two = load_backend(BackendKind::Tract, &file, &BackendOptions { threads: Some(2) }).unwrap();
    two.infer(&x, &mut maps).unwrap();
    assert!(threads_of_this_process() >= before + 2, "a two-thread backend started no pool");
    // Same function whatever the split.
    let worst = q_one.iter().zip(&maps.q).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-5, "1 and 2 threads differ by {worst}");
}
