//! `grasp-calib`: calibrate the camera against the arm, and inspect calibration files. Each
//! subcommand is a module of [`cmd`].

mod cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "grasp-calib",
    version,
    about = "Calibrate the camera against the arm (image → robot transform) and inspect calibration files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Wizard(cmd::wizard::Args),
    Solve(cmd::solve::Args),
    Check(cmd::check::Args),
    Project(cmd::project::Args),
    ImportCameraInfo(cmd::import_camera_info::Args),
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match Cli::parse().command {
        Command::Wizard(args) => cmd::wizard::run(args),
        Command::Solve(args) => cmd::solve::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Project(args) => cmd::project::run(args),
        Command::ImportCameraInfo(args) => cmd::import_camera_info::run(args),
    }
}
