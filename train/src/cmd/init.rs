//! `grasp-train init`.

use super::*;

/// Write a randomly initialised model (PyTorch's default initialisation, seeded) through the
/// real ONNX exporter: for testing the runtime before a model is trained.
///
/// Example: grasp-train init --arch mtgcnn --aux depth --seed 1 --out /tmp/random.onnx
#[derive(clap::Args)]
pub struct Args {
    /// Network: `ggcnn` (GG-CNN2) or `mtgcnn` (GG-CNN + auxiliary branch).
    #[arg(long, default_value = "ggcnn")]
    arch: ArchKind,
    /// Auxiliary task of `mtgcnn`: `depth` or `mask` (default depth).
    #[arg(long)]
    aux: Option<AuxTask>,
    /// Seed for libtorch's random initialisation.
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// Square input size in pixels (a multiple of 4).
    #[arg(long, default_value_t = DEFAULT_INPUT_SIZE)]
    input_size: usize,
    /// Also export the auxiliary output `aux` (left out by default: it is not used for grasping).
    #[arg(long)]
    with_aux: bool,
    /// Where to write the ONNX file.
    #[arg(long)]
    out: PathBuf,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let Args { arch, aux, seed, input_size, with_aux, out } = args;
    let arch = Architecture::new(arch, aux)?;
    tch::manual_seed(seed);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net = GraspNet::new(&vs, &arch);
    let mut info = ModelInfo::new(arch.kind, arch.aux_task(), input_size);
    info.provenance = format!("random initialisation (grasp-train init, seed {seed}); not trained");
    let bytes = grasp_models::onnx::export(
        &arch,
        &named_weights(&vs)?,
        &info,
        &grasp_models::onnx::ExportOptions::with_aux(with_aux),
    )?;
    std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
    let params = if with_aux { arch.parameter_count() } else { arch.without_aux().parameter_count() };
    println!("wrote {} ({} {params} parameters, input {input_size}x{input_size})", out.display(), arch.kind);
    Ok(())
}
