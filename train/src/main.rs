//! `grasp-train`: the desktop training tool of grasp-edge. Each subcommand is a module of [`cmd`].

mod cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "grasp-train",
    version,
    about = "Train, evaluate and export GG-CNN / MTG-CNN grasp models (MTG-CNN with positional loss, Prew et al.)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Init(cmd::init::Args),
    Synth(cmd::synth::Args),
    Fit(cmd::fit::Args),
    Export(cmd::export::Args),
    Eval(cmd::eval::Args),
    Cv(cmd::cv::Args),
    Poses(cmd::poses::Args),
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // Before libtorch allocates: freed tensors stay on the heap (fit.rs, BENCHMARKS.md).
    grasp_train::fit::keep_large_allocations_on_the_heap();
    match Cli::parse().command {
        Command::Init(args) => cmd::init::run(args),
        Command::Synth(args) => cmd::synth::run(args),
        Command::Fit(args) => cmd::fit::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Cv(args) => cmd::cv::run(args),
        Command::Poses(args) => cmd::poses::run(args),
    }
}
