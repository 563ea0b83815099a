//! `grasp-train poses`.

use super::*;

/// The pose table: a model's top-1 success on synthetic scenes seen by cameras at heights 350,
/// 600 and 900 mm and tilts 0° and 30° (640x480, 450 px focal), with the runtime's centre crop
/// and through the table view at the model's scale (or --mm-per-px). The same scenes at every
/// pose; scenes are rendered in memory. Prints a markdown table (or JSON).
///
/// Example: grasp-train poses --model models/ggcnn-p-rgb-224.onnx --count 100
#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: PathBuf,
    /// Table mm per view pixel (default: the model's grasp.mm_per_px).
    #[arg(long)]
    mm_per_px: Option<f64>,
    /// Scenes per pose.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Scene seed (the training sets of the shipped models use other seeds).
    #[arg(long, default_value_t = 1000)]
    seed: u64,
    #[command(flatten)]
    run: RunModelArgs,
    /// Print the rows as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let Args { model, mm_per_px, count, seed, run: run_model, json } = args;
    let file = GraspModelFile::read(&model)?;
    let m = mm_per_px.or(file.info.mm_per_px.map(f64::from)).with_context(|| {
        format!("{} declares no training scale (grasp.mm_per_px): give --mm-per-px", model.display())
    })?;
    // The centre-crop column runs the model as a centre-crop model, whatever it declares.
    let mut as_crop = file.clone();
    as_crop.info.image_fit = grasp_models::contract::ImageFit::CenterCrop;
    let (mut crop, mut view) = (run_model.detector(&as_crop, &model)?, run_model.detector(&file, &model)?);
    let cameras = grasp_train::posed::standard_poses();
    let bar = indicatif::ProgressBar::new((cameras.len() * count) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("poses [{bar:30}] {pos}/{len} scenes ETA {eta}")
            .expect("valid template"),
    );
    let started = std::time::Instant::now();
    let rows =
        grasp_train::posed::pose_table(&mut crop, &mut view, file.info.input_size, m, &cameras, count, seed, |n| {
            bar.set_position(n as u64)
        })?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string(&rows)?);
    } else {
        println!(
            "model {} ({}, seed {seed}, {:.0} s):\n",
            model.display(),
            view.backend_name(),
            started.elapsed().as_secs_f64()
        );
        print!("{}", grasp_train::posed::pose_table_markdown(&rows, m));
    }
    Ok(())
}
