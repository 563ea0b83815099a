//! `grasp-edge sim-arm`: the simulated grasp-line controller on a pseudo-terminal.

use super::install_stop_handler;
use anyhow::{Context, Result};
use grasp_devices::grasp_line::sim::{serve_pty, Faults, SimController};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Serve the simulated grasp-line controller on a pseudo-terminal until Ctrl-C, for manual
/// tests with a terminal program or a firmware port: the terminal's path is published as a
/// symlink at LINK.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Symlink to create (e.g. /tmp/grasp-arm).
    link: PathBuf,
    /// Probability of dropping / garbling each line (both directions), for fault drills.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    faults: f64,
}

fn probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}` is not a probability (a number from 0 to 1)")),
    }
}

/// Serves until a signal, then prints how many commands ran.
pub fn run(args: Args) -> Result<()> {
    let p = args.faults;
    let faults = Faults { drop_in: p, drop_out: p, garble_in: p, garble_out: p, ..Default::default() };
    let state = Arc::new(Mutex::new(SimController::new(Instant::now())));
    let mut server = serve_pty(&args.link, state.clone(), faults).context("starting the simulated arm")?;
    println!(
        "simulated grasp-line arm on {} -> {} (Ctrl-C to stop)",
        args.link.display(),
        std::fs::read_link(&args.link)?.display()
    );
    let stop = install_stop_handler()?;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    server.shutdown();
    println!("executed {} commands", state.lock().unwrap().executed.len());
    Ok(())
}
