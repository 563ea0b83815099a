//! `grasp-edge`: the robot-side binary. Each subcommand is a module of [`cmd`].

mod cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "grasp-edge",
    version,
    about = "Pick objects seen by one colour camera: grasp model -> robot frame -> arm"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Detect(cmd::detect::Args),
    Run(cmd::run::Args),
    CheckConfig(cmd::check_config::Args),
    Demo(cmd::demo::Args),
    SimArm(cmd::sim_arm::Args),
}

fn main() -> Result<()> {
    // Under systemd, journald adds its own timestamps.
    let mut logger = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        logger.format_timestamp(None);
    }
    logger.init();
    match Cli::parse().command {
        Command::Detect(args) => cmd::detect::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::CheckConfig(args) => cmd::check_config::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::SimArm(args) => cmd::sim_arm::run(args),
    }
}
