//! `grasp-train synth`.

use super::*;

/// Generate synthetic scenes in the Jacquard layout (RGB, perfect depth, mask, antipodal grasps).
///
/// Example: grasp-train synth --out /tmp/synth --count 200 --seed 1
#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 100)]
    count: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Image side in pixels.
    #[arg(long, default_value_t = 300)]
    size: usize,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let Args { out, count, seed, size } = args;
    Architecture::check_input_size(size)?;
    let bar = indicatif::ProgressBar::new(count as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("synth [{bar:30}] {pos}/{len} scenes ETA {eta}")
            .expect("valid template"),
    );
    grasp_train::synth::write_dataset(&out, count, seed, size, |n| bar.set_position(n as u64))?;
    bar.finish_and_clear();
    println!("wrote {count} scenes ({size}x{size}, seed {seed}) to {} (Jacquard layout)", out.display());
    Ok(())
}
