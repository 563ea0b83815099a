//! `grasp-train`: the desktop training tool of grasp-edge.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use grasp_models::contract::{ModelInfo, DEFAULT_INPUT_SIZE};
use grasp_models::{ArchKind, Architecture, AuxTask};
use grasp_train::net::{named_weights, GraspNet};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "grasp-train", version, about = "Train, evaluate and export GG-CNN / MTG-CNN grasp models (paper: MTG-CNN with positional loss)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a randomly initialised model (PyTorch's default initialisation, seeded) through the
    /// real ONNX exporter: for testing the runtime before a model is trained.
    ///
    /// Example: grasp-train init --arch mtgcnn --aux depth --seed 1 --out /tmp/random.onnx
    Init {
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
    },
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse().command {
        Command::Init { arch, aux, seed, input_size, with_aux, out } => {
            let arch = Architecture::new(arch, aux).map_err(anyhow::Error::msg)?;
            tch::manual_seed(seed);
            let vs = tch::nn::VarStore::new(tch::Device::Cpu);
            let _net = GraspNet::new(&vs, &arch);
            let mut info = ModelInfo::new(arch.kind, arch.aux_task(), input_size);
            info.provenance = format!("random initialisation (grasp-train init, seed {seed}); not trained");
            let bytes = grasp_models::onnx::export(&arch, &named_weights(&vs)?, &info, with_aux)?;
            std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {} ({} {} parameters, input {input_size}x{input_size})", out.display(), arch.kind, if with_aux { arch.parameter_count() } else { arch.without_aux().parameter_count() });
        }
    }
    Ok(())
}
