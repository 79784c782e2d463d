//! The `dtrec` command-line tool: train, evaluate, recommend, statistics.

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use cli::{ConfigArgs, DataArgs, EpochBars};
use dtrec::data::{DatasetStats, Interactions, Split};
use dtrec::eval::Metrics;
use dtrec::model::halting::indicators::IndicatorSpace;
use dtrec::model::HaltingPolicy;
use dtrec::serve::{RecommendOptions, Recommender};
use dtrec::train::{self, TrainConfig, TrainOutcome, TrainState};

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
    /// Train and evaluate on the built-in synthetic data (DTRec, T_max = 3, unless --family
    /// says otherwise), then recommend for a sample user and print its reasoning trajectory.
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
        /// Run every user at full depth T_max instead of the model's halting policy.
        #[arg(long)]
        fixed_depth: bool,
        /// Compute the halting indicators over `items` or `prototypes` instead of the
        /// space the model's policy was calibrated in (for comparison only).
        #[arg(long)]
        indicators: Option<String>,
        /// Also print each split's metrics by history length and by how often the target
        /// occurs as a training target.
        #[arg(long)]
        breakdown: bool,
        /// Write every sample's rank and steps as CSV here
        /// (split,user,history_len,target,target_train_count,rank,steps).
        #[arg(long)]
        ranks_out: Option<PathBuf>,
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
    /// Print one user's reasoning trajectory: per step the halting indicators, the best
    /// prototype at each level and the top items.
    Trajectory {
        #[arg(long)]
        model: PathBuf,
        /// Item ids, oldest first, separated by spaces or commas.
        #[arg(long)]
        history: String,
        /// Items listed per step.
        #[arg(short, long, default_value_t = 5)]
        k: usize,
    },
    /// Train and evaluate every family and the DTRec ablations on one dataset; write the
    /// table to a section of RESULTS.md.
    Experiment(Box<cli::lab::ExperimentArgs>),
    /// Choose each family's configuration on validation across several experiment work
    /// directories; write the chosen runs' test figures to a section of RESULTS.md.
    Select(cli::lab::SelectArgs),
    /// Compare model B with model A sample by sample from their `eval --ranks-out` files,
    /// written on the same data: per split, NDCG@10, HR@10 and HR@1 differences (B − A) with
    /// standard errors, 95% intervals and p-values. With `--pair` for more seeds, also a
    /// paired t-test over the seeds.
    Compare {
        /// Ranks file of model A, the reference.
        a: PathBuf,
        /// Ranks file of model B.
        b: PathBuf,
        /// Ranks files of A and B trained with another seed (repeatable). The seeds are
        /// then also compared as runs: Student's t over the per-seed differences.
        #[arg(long = "pair", num_args = 2, value_names = ["A", "B"], action = clap::ArgAction::Append)]
        pairs: Vec<PathBuf>,
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
            let (rec, outcome) = fit(
                &interactions,
                &split,
                model,
                &train,
                checkpoint.as_deref(),
                report.as_deref(),
            )?;
            print_metrics("validation (best epoch)", &outcome.valid);
            cli::print_halting(&outcome);
            print_metrics(
                &format!("test (halting: {})", train.halting.rule.name()),
                &outcome.test,
            );
            println!("{}", outcome.test_compute);
            rec.save(&out).map_err(|e| e.to_string())?;
            eprintln!("model written to {}", out.display());
            Ok(())
        }
        Command::Eval {
            model,
            data,
            mask_history,
            fixed_depth,
            indicators,
            breakdown,
            ranks_out,
        } => {
            let mut rec = Recommender::load(&model).map_err(|e| e.to_string())?;
            if let Some(name) = indicators {
                let space: IndicatorSpace = serde_json::from_value(serde_json::Value::String(name))
                    .map_err(|e| format!("--indicators: {e}"))?;
                if space != rec.indicators().space() {
                    eprintln!(
                        "warning: the halting policy was calibrated with indicators over the {}; evaluating it over the {}",
                        rec.indicators().space().name(),
                        space.name()
                    );
                }
                rec = rec.with_indicators(space).map_err(|e| e.to_string())?;
            }
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
            let target_counts = split.train_target_counts(&interactions);
            let policy = if fixed_depth {
                HaltingPolicy::Fixed
            } else {
                rec.halting().clone()
            };
            let mut reports = Vec::new();
            for (name, samples) in [("validation", &split.valid), ("test", &split.test)] {
                let started = Instant::now();
                let report = dtrec::eval::evaluate_policy_in(
                    rec.model(),
                    &interactions,
                    samples,
                    &policy,
                    rec.indicators(),
                    256,
                    mask_history,
                )
                .map_err(|e| e.to_string())?;
                print_metrics(name, &report.report.metrics);
                println!("{}", report.compute);
                eprintln!(
                    "({} samples in {:.2}s)",
                    samples.len(),
                    started.elapsed().as_secs_f64()
                );
                reports.push((name, samples, report));
            }
            let evaluated: Vec<cli::EvaluatedSamples> = reports
                .iter()
                .map(|(name, samples, report)| cli::EvaluatedSamples {
                    split: name,
                    samples,
                    ranks: &report.report.ranks,
                    steps: &report.steps,
                })
                .collect();
            if breakdown {
                for part in &evaluated {
                    println!("{} by segment:", part.split);
                    println!("{}", cli::breakdown(&interactions, part, &target_counts));
                }
            }
            if let Some(path) = ranks_out {
                cli::write_ranks(&path, &interactions, &evaluated, &target_counts)?;
                eprintln!("ranks written to {}", path.display());
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
            let items = split_items(&history);
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
        Command::Trajectory { model, history, k } => {
            let rec = Recommender::load(&model).map_err(|e| e.to_string())?;
            let items = split_items(&history);
            let trajectory = rec.trajectory(&items, k).map_err(|e| e.to_string())?;
            print!("{trajectory}");
            Ok(())
        }
        Command::Experiment(args) => {
            let table = cli::lab::experiment(&args)?;
            println!("{table}");
            eprintln!("table written to {}", args.results.display());
            Ok(())
        }
        Command::Select(args) => {
            let table = cli::lab::select(&args)?;
            println!("{table}");
            eprintln!("table written to {}", args.results.display());
            Ok(())
        }
        Command::Compare { a, b, pairs } => {
            print!("{}", cli::lab::compare_report(&a, &b, &pairs)?);
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

/// Item ids separated by spaces or commas.
fn split_items(list: &str) -> Vec<&str> {
    list.split([' ', ',']).filter(|s| !s.is_empty()).collect()
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

/// Runs training to its end (resuming from `checkpoint` if it exists,
/// writing it after every epoch); returns the final state and the training
/// configuration in force (a resumed run keeps its saved one).
fn train_state(
    data: &Interactions,
    split: &Split,
    model: dtrec::model::ModelConfig,
    train: &TrainConfig,
    checkpoint: Option<&Path>,
) -> Result<(TrainState, TrainConfig), String> {
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
        cli::describe_lr(&train),
        train.seed,
        train.threads.unwrap_or_else(rayon::current_num_threads)
    );
    let mut bars = EpochBars::default();
    let mut save = |s: &TrainState| match checkpoint {
        Some(path) => train::save_checkpoint(path, s, &train, &vocab)
            .map_err(|e| train::TrainError::Config(e.to_string())),
        None => Ok(()),
    };
    train::run(
        &mut state,
        data,
        split,
        &train,
        &mut |p| bars.handle(p),
        &mut save,
    )
    .map_err(|e| e.to_string())?;
    Ok((state, train))
}

/// Trains (resuming from `checkpoint` if it exists) and returns the best
/// model, ready to serve with its halting policy, and the run's outcome.
fn fit(
    data: &Interactions,
    split: &Split,
    model: dtrec::model::ModelConfig,
    train: &TrainConfig,
    checkpoint: Option<&Path>,
    report: Option<&Path>,
) -> Result<(Recommender, TrainOutcome), String> {
    let vocab = data.item_ids()[1..].to_vec();
    let started = Instant::now();
    let (state, train) = train_state(data, split, model, train, checkpoint)?;
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
            "test_compute": outcome.test_compute,
            "halting": outcome.halting.as_ref().map(cli::halting_json),
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
    let mut rec = Recommender::new(outcome.model.clone(), vocab).map_err(|e| e.to_string())?;
    if let Some(h) = &outcome.halting {
        rec = rec.with_halting(h.policy.clone());
    }
    if let Some(p) = &outcome.prototypes {
        rec = rec.with_prototypes(p.clone()).map_err(|e| e.to_string())?;
    }
    if let Some(h) = &outcome.halting {
        rec = rec
            .with_indicators(h.indicators.space())
            .map_err(|e| e.to_string())?;
    }
    Ok((rec, outcome))
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
    // DTRec with T_max = 3 unless --family says otherwise
    let mut config = config.clone();
    if config.family.is_none() {
        config.family = Some("dtrec".into());
        config.t_max = config.t_max.or(Some(3));
    }
    let (model, mut train) = config.resolve(interactions.num_items())?;
    // A short run by default, so the main job finishes in a few minutes;
    // --epochs / --patience lift it.
    if config.epochs.is_none() {
        train.max_epochs = 10;
    }
    if config.patience.is_none() {
        train.patience = 3;
    }
    let (rec, outcome) = fit(&interactions, &split, model, &train, None, None)?;
    cli::print_halting(&outcome);
    print_metrics("test (best validation epoch)", &outcome.test);
    println!("{}", outcome.test_compute);
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
    if rec.model().config().t_max > 0 {
        let trajectory = rec.trajectory(&history, 5).map_err(|e| e.to_string())?;
        print!("{trajectory}");
    }
    Ok(())
}
