//! The `dtrec` command-line tool: train, evaluate, recommend, statistics.

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use cli::{ConfigArgs, DataArgs, EpochBars};
use dtrec::data::{DatasetStats, Interactions, Split};
use dtrec::eval::Metrics;
use dtrec::serve::{RecommendOptions, Recommender};
use dtrec::train::{self, TrainConfig, TrainState};

#[derive(Parser)]
#[command(
    name = "dtrec",
    version,
    about = "Sequential recommendation with adaptive latent reasoning, on the CPU"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train and evaluate on the built-in synthetic data, then recommend for a sample user.
    Quickstart {
        /// Where the model file goes.
        #[arg(long, default_value = "target/quickstart/model.safetensors")]
        out: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Train a model, early-stopping on validation NDCG@10; report test metrics of the best epoch.
    Train {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        config: ConfigArgs,
        /// Model file to write (the best epoch's model).
        #[arg(long, default_value = "model.safetensors")]
        out: PathBuf,
        /// Checkpoint written after every epoch; an existing one is resumed.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Also write the run's epochs and metrics as JSON here.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Evaluate a model file on a dataset's validation and test samples.
    Eval {
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// Exclude history items from the ranking.
        #[arg(long)]
        mask_history: bool,
    },
    /// Top-k next items for a history of external item ids.
    Recommend {
        #[arg(long)]
        model: PathBuf,
        /// Item ids, oldest first, separated by spaces or commas.
        #[arg(long)]
        history: String,
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        /// Allow items of the history in the results.
        #[arg(long)]
        include_seen: bool,
        /// Ignore history items the model does not know.
        #[arg(long)]
        skip_unknown: bool,
    },
    /// Dataset statistics.
    Stats {
        #[command(flatten)]
        data: DataArgs,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Quickstart { out, config } => quickstart(&out, &config),
        Command::Train {
            data,
            config,
            out,
            checkpoint,
            report,
        } => {
            let interactions = load(&data)?;
            let split = data.split(&interactions)?;
            eprintln!("{split}");
            let (model, train) = config.resolve(interactions.num_items())?;
            let (rec, valid, test) = fit(
                &interactions,
                &split,
                model,
                &train,
                checkpoint.as_deref(),
                report.as_deref(),
            )?;
            print_metrics("validation (best epoch)", &valid);
            print_metrics("test", &test);
            rec.save(&out).map_err(|e| e.to_string())?;
            eprintln!("model written to {}", out.display());
            Ok(())
        }
        Command::Eval {
            model,
            data,
            mask_history,
        } => {
            let rec = Recommender::load(&model).map_err(|e| e.to_string())?;
            let interactions = load(&data)?;
            if interactions.item_ids()[1..] != *rec.vocab() {
                return Err(format!(
                    "{}: the item vocabulary differs from the model's ({} vs {} items): evaluate on the data the model was trained on",
                    data.source(),
                    interactions.num_items(),
                    rec.vocab().len()
                ));
            }
            let split = data.split(&interactions)?;
            for (name, samples) in [("validation", &split.valid), ("test", &split.test)] {
                let started = Instant::now();
                let report =
                    train::evaluate(rec.model(), &interactions, samples, 256, mask_history)
                        .map_err(|e| e.to_string())?;
                print_metrics(name, &report.metrics);
                eprintln!(
                    "({} samples in {:.2}s)",
                    samples.len(),
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
        Command::Recommend {
            model,
            history,
            k,
            include_seen,
            skip_unknown,
        } => {
            let rec = Recommender::load(&model).map_err(|e| e.to_string())?;
            let items: Vec<&str> = history
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .collect();
            let options = RecommendOptions {
                exclude_seen: !include_seen,
                skip_unknown,
            };
            for (rank, r) in rec
                .recommend(&items, k, &options)
                .map_err(|e| e.to_string())?
                .iter()
                .enumerate()
            {
                println!("{:>3}  {:<16} {:.4}", rank + 1, r.item, r.score);
            }
            Ok(())
        }
        Command::Stats { data } => {
            let interactions = load(&data)?;
            println!("{}", data.source());
            println!("{}", DatasetStats::of(&interactions));
            Ok(())
        }
    }
}

fn load(data: &DataArgs) -> Result<Interactions, String> {
    let started = Instant::now();
    let interactions = data.load()?;
    eprintln!(
        "loaded {} in {:.2}s",
        data.source(),
        started.elapsed().as_secs_f64()
    );
    Ok(interactions)
}

fn print_metrics(name: &str, metrics: &Metrics) {
    println!("{name}:\n{metrics}");
}

/// Trains (resuming from `checkpoint` if it exists) and returns the best
/// model with its validation and test metrics.
fn fit(
    data: &Interactions,
    split: &Split,
    model: dtrec::model::ModelConfig,
    train: &TrainConfig,
    checkpoint: Option<&Path>,
    report: Option<&Path>,
) -> Result<(Recommender, Metrics, Metrics), String> {
    let vocab = data.item_ids()[1..].to_vec();
    let (mut state, train) = match checkpoint.filter(|p| p.exists()) {
        Some(path) => {
            let (state, saved, saved_vocab) =
                train::load_checkpoint(path).map_err(|e| e.to_string())?;
            if saved_vocab != vocab || state.model.config() != &model {
                return Err(format!(
                    "{}: checkpoint of a different model or dataset",
                    path.display()
                ));
            }
            eprintln!("resuming {} at epoch {}", path.display(), state.epoch);
            (state, saved)
        }
        None => (
            TrainState::new(model, train).map_err(|e| e.to_string())?,
            train.clone(),
        ),
    };
    eprintln!(
        "training {} parameters on {} sequences (batch {}, lr {}, seed {}, {} threads)",
        state.model.params.n_scalars(),
        split.train.len(),
        train.batch_size,
        train.lr,
        train.seed,
        train.threads.unwrap_or_else(rayon::current_num_threads)
    );
    let mut bars = EpochBars::default();
    let mut save = |s: &TrainState| match checkpoint {
        Some(path) => train::save_checkpoint(path, s, &train, &vocab)
            .map_err(|e| train::TrainError::Config(e.to_string())),
        None => Ok(()),
    };
    let started = Instant::now();
    train::run(
        &mut state,
        data,
        split,
        &train,
        &mut |p| bars.handle(p),
        &mut save,
    )
    .map_err(|e| e.to_string())?;
    let outcome = train::finish(&state, data, split, &train).map_err(|e| e.to_string())?;
    eprintln!(
        "best epoch {} of {} ({:.1}s in all)",
        outcome.best_epoch,
        outcome.history.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = report {
        let json = serde_json::json!({
            "model": outcome.model.config(),
            "train": train,
            "best_epoch": outcome.best_epoch,
            "valid": outcome.valid,
            "test": outcome.test,
            "epochs": outcome.history,
        });
        dtrec::io::write_atomic(
            path,
            serde_json::to_string_pretty(&json)
                .expect("serializes")
                .as_bytes(),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let rec = Recommender::new(outcome.model, vocab).map_err(|e| e.to_string())?;
    Ok((rec, outcome.valid, outcome.test))
}

/// The README's main job: built-in data → train → test metrics → recommendations.
fn quickstart(out: &Path, config: &ConfigArgs) -> Result<(), String> {
    let data_args = DataArgs {
        data: None,
        format: cli::FormatArg::Auto,
        user_col: String::new(),
        item_col: String::new(),
        time_col: String::new(),
        synthetic_users: 3000,
        split: cli::SplitArg::Loo,
    };
    let interactions = load(&data_args)?;
    println!("{}", DatasetStats::of(&interactions));
    let split = data_args.split(&interactions)?;
    let (model, mut train) = config.resolve(interactions.num_items())?;
    // A short run by default, so the main job finishes in a few minutes;
    // --epochs / --patience lift it.
    if config.epochs.is_none() {
        train.max_epochs = 20;
    }
    if config.patience.is_none() {
        train.patience = 3;
    }
    let (rec, _, test) = fit(&interactions, &split, model, &train, None, None)?;
    print_metrics("test (best validation epoch)", &test);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    rec.save(out).map_err(|e| e.to_string())?;
    println!("model written to {}", out.display());

    let user = 0;
    let history: Vec<&str> = interactions
        .user_items(user)
        .iter()
        .map(|&i| interactions.item_ids()[i as usize].as_str())
        .collect();
    let recent = &history[history.len().saturating_sub(10)..];
    println!(
        "user {}: last {} of {} items: {}",
        interactions.user_ids()[user as usize],
        recent.len(),
        history.len(),
        recent.join(" ")
    );
    println!("top 10 recommendations (history excluded):");
    let rec = Recommender::load(out).map_err(|e| e.to_string())?;
    for (rank, r) in rec
        .recommend(&history, 10, &RecommendOptions::default())
        .map_err(|e| e.to_string())?
        .iter()
        .enumerate()
    {
        println!("{:>3}  item {:<8} score {:.4}", rank + 1, r.item, r.score);
    }
    Ok(())
}
