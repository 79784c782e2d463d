//! `dtrec experiment`: trains every family (and the DTRec ablations) on one
//! dataset with one seed and the same settings, and writes the comparison
//! table into a section of a Markdown file (RESULTS.md).
//!
//! Each run's result is kept as JSON in the work directory (with its
//! checkpoint), so an interrupted experiment resumes where it stopped and
//! finished runs are not retrained.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cli::{describe_lr, ConfigArgs, DataArgs};
use dtrec::data::{Interactions, Split};
use dtrec::eval::ComputeReport;
use dtrec::eval::Metrics;
use dtrec::model::{Family, Model, ModelConfig};
use dtrec::model::{HaltingRule, HpsConfig, HpsVariant};
use dtrec::serve::Recommender;
use dtrec::train::{EpochSelection, TrainConfig};

/// One training run of the experiment.
#[derive(Clone, Copy, Debug)]
struct RunSpec {
    name: &'static str,
    family: Family,
    hps: HpsVariant,
}

/// Every run: the four families, then the DTRec HPS ablations.
const RUNS: [RunSpec; 6] = [
    RunSpec {
        name: "sasrec",
        family: Family::Sasrec,
        hps: HpsVariant::Off,
    },
    RunSpec {
        name: "rearec-erl",
        family: Family::RearecErl,
        hps: HpsVariant::Off,
    },
    RunSpec {
        name: "rearec-prl",
        family: Family::RearecPrl,
        hps: HpsVariant::Off,
    },
    RunSpec {
        name: "dtrec",
        family: Family::Dtrec,
        hps: HpsVariant::Prototype,
    },
    RunSpec {
        name: "dtrec-cluster-soft",
        family: Family::Dtrec,
        hps: HpsVariant::ClusterSoft,
    },
    RunSpec {
        name: "dtrec-no-hps",
        family: Family::Dtrec,
        hps: HpsVariant::Off,
    },
];

/// A run's outcome, as stored in `<work dir>/<run>.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct RunResult {
    pub(super) run: String,
    pub(super) family: Family,
    pub(super) t_max: usize,
    pub(super) hps: HpsVariant,
    pub(super) best_epoch: usize,
    pub(super) epochs: usize,
    train_seconds: f64,
    valid: Metrics,
    /// Per halting rule (one `fixed` row for SASRec).
    pub(super) rules: Vec<RuleRow>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct RuleRow {
    pub(super) rule: HaltingRule,
    pub(super) valid: Metrics,
    pub(super) test: Metrics,
    pub(super) compute: ComputeReport,
}

/// What training a run produced (cached as `<run>.train.json` beside the
/// best model `<run>.best.safetensors`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct TrainingInfo {
    best_epoch: usize,
    epochs: usize,
    train_seconds: f64,
    valid: Metrics,
    /// The settings that trained it ([`training_settings`]); absent in
    /// caches written before they were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) train: Option<TrainConfig>,
}

/// The part of `train` that shapes `spec`'s training: everything but the
/// halting settings, which only act on the trained model unless its epochs
/// are chosen under the served halting rule, and, for a run
/// without process supervision, the HPS settings (its loss never reads
/// them), so a sweep over the HPS settings reuses the cached baselines.
fn training_settings(train: &TrainConfig, spec: &RunSpec) -> TrainConfig {
    let hps = if spec.hps == HpsVariant::Off {
        HpsConfig {
            variant: HpsVariant::Off,
            ..HpsConfig::default()
        }
    } else {
        train.hps.clone()
    };
    // the halting settings shape training only when epochs are chosen under the served rule
    let halting = match train.select_on {
        EpochSelection::Served => train.halting.clone(),
        EpochSelection::FixedDepth => Default::default(),
    };
    TrainConfig {
        halting,
        hps,
        ..train.clone()
    }
}

struct Trained {
    model: Model,
    info: TrainingInfo,
}

/// Trains a run to its end (resumable through its checkpoint) or loads the
/// cached result of a finished one.
fn train_or_load(
    data: &Interactions,
    split: &Split,
    model: ModelConfig,
    train: &TrainConfig,
    dir: &Path,
    spec: &RunSpec,
) -> Result<Trained, String> {
    let model_path = dir.join(format!("{}.best.safetensors", spec.name));
    let info_path = dir.join(format!("{}.train.json", spec.name));
    if let (Ok(rec), Ok(text)) = (
        Recommender::load(&model_path),
        std::fs::read_to_string(&info_path),
    ) {
        let info: TrainingInfo =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", info_path.display()))?;
        let settings = training_settings(train, spec);
        let same_training = match &info.train {
            Some(cached) => cached == &settings,
            None => {
                eprintln!(
                    "== {}: the cache does not record its training settings (written by an older \
                     version); reusing it as trained with the current ones",
                    spec.name
                );
                true
            }
        };
        if rec.model().config() == &model && same_training {
            eprintln!(
                "== {}: trained already ({})",
                spec.name,
                model_path.display()
            );
            return Ok(Trained {
                model: rec.model().clone(),
                info,
            });
        }
        eprintln!(
            "== {}: cached model has another model or training configuration, retraining",
            spec.name
        );
    }
    eprintln!(
        "== training {} ({}, T_max {})",
        spec.name, spec.family, model.t_max
    );
    let checkpoint = dir.join(format!("{}.ckpt.safetensors", spec.name));
    let (state, _) = crate::train_state(data, split, model, train, Some(&checkpoint))?;
    let (best_epoch, _) = state.best.ok_or("no validation epoch ran")?;
    let info = TrainingInfo {
        best_epoch,
        epochs: state.history.len(),
        train_seconds: state.history.iter().map(|e| e.train_seconds).sum(),
        valid: state.history[best_epoch]
            .valid
            .clone()
            .ok_or("the best epoch was not validated")?,
        train: Some(training_settings(train, spec)),
    };
    let model = state.best_model();
    Recommender::new(model.clone(), data.item_ids()[1..].to_vec())
        .map_err(|e| e.to_string())?
        .save(&model_path)
        .map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(&info).expect("serializes");
    dtrec::io::write_atomic(&info_path, json.as_bytes())
        .map_err(|e| format!("{}: {e}", info_path.display()))?;
    let _ = std::fs::remove_file(&checkpoint);
    Ok(Trained { model, info })
}

/// Arguments of the experiment command.
#[derive(clap::Args, Debug, Clone)]
pub struct ExperimentArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Dataset label of the table (default: the data source).
    #[arg(long)]
    pub name: Option<String>,
    /// Markdown file whose section for this dataset is (re)written.
    #[arg(long, default_value = "RESULTS.md")]
    pub results: PathBuf,
    /// Checkpoints and per-run results (resumable).
    #[arg(long, default_value = "target/experiments")]
    pub work_dir: PathBuf,
    /// Comma-separated subset of runs (default: all of sasrec,
    /// rearec-erl, rearec-prl, dtrec, dtrec-cluster-soft, dtrec-no-hps).
    #[arg(long)]
    pub runs: Option<String>,
}

/// Runs the experiment; returns the table it wrote.
pub fn experiment(args: &ExperimentArgs) -> Result<String, String> {
    let data = crate::load(&args.data)?;
    let split = args.data.split(&data)?;
    let label = args.name.clone().unwrap_or_else(|| args.data.source());
    let slug = slug(&label);
    let dir = args.work_dir.join(&slug);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let selected: Vec<RunSpec> = match &args.runs {
        None => RUNS.to_vec(),
        Some(list) => list
            .split(',')
            .map(|n| {
                RUNS.iter()
                    .find(|r| r.name == n.trim())
                    .copied()
                    .ok_or_else(|| format!("--runs: unknown run `{n}`"))
            })
            .collect::<Result<_, _>>()?,
    };
    let t_max = args.config.t_max.unwrap_or(3);
    let mut results = Vec::new();
    let mut command_train = None;
    let mut dtrec_selection = EpochSelection::FixedDepth;
    for spec in &selected {
        let path = dir.join(format!("{}.result.json", spec.name));
        let mut config = args.config.clone();
        config.family = Some(spec.family.name().to_string());
        config.t_max = Some(if spec.family == Family::Sasrec {
            0
        } else {
            t_max
        });
        config.hps = Some(spec.hps.name().to_string());
        // the option adds PRL's noise view to DTRec; the baselines keep their own objectives
        config.dtrec_contrastive &= spec.family == Family::Dtrec;
        // the tables report the baselines at fixed depth, so they are selected there too
        if spec.family != Family::Dtrec {
            config.select_on = None;
        }
        let (model, train) = config.resolve(data.num_items())?;
        command_train.get_or_insert_with(|| train.clone());
        if spec.family == Family::Dtrec {
            dtrec_selection = train.select_on;
        }
        let trained = train_or_load(&data, &split, model, &train, &dir, spec)?;
        eprintln!("== evaluating {}", spec.name);
        let evaluated = dtrec::train::evaluate_trained(&trained.model, None, &data, &split, &train)
            .map_err(|e| e.to_string())?;
        let rules = match &evaluated.halting {
            None => vec![RuleRow {
                rule: HaltingRule::Fixed,
                valid: trained.info.valid.clone(),
                test: evaluated.test.clone(),
                compute: evaluated.test_compute.clone(),
            }],
            Some(h) => {
                print!("{}", h.calibration);
                h.rules
                    .iter()
                    .map(|r| RuleRow {
                        rule: r.rule,
                        valid: r.valid.clone(),
                        test: r.test.clone(),
                        compute: r.test_compute.clone(),
                    })
                    .collect()
            }
        };
        let mut served = Recommender::new(trained.model.clone(), data.item_ids()[1..].to_vec())
            .map_err(|e| e.to_string())?;
        if let Some(h) = &evaluated.halting {
            served = served.with_halting(h.policy.clone());
        }
        if let Some(p) = evaluated.prototypes {
            served = served.with_prototypes(p).map_err(|e| e.to_string())?;
        }
        if let Some(h) = &evaluated.halting {
            // the served thresholds were calibrated on these indicators
            served = served
                .with_indicators(h.indicators.space())
                .map_err(|e| e.to_string())?;
        }
        served
            .save(dir.join(format!("{}.served.safetensors", spec.name)))
            .map_err(|e| e.to_string())?;
        let result = RunResult {
            run: spec.name.to_string(),
            family: spec.family,
            t_max: trained.model.config().t_max,
            hps: spec.hps,
            best_epoch: trained.info.best_epoch,
            epochs: trained.info.epochs,
            train_seconds: trained.info.train_seconds,
            valid: trained.info.valid.clone(),
            rules,
        };
        let json = serde_json::to_string_pretty(&result).expect("serializes");
        dtrec::io::write_atomic(&path, json.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        results.push(result);
    }
    let train = command_train.ok_or("no run selected")?;
    let table = render(
        &label,
        &results,
        &train,
        dtrec_selection,
        t_max,
        &command_line(),
    );
    replace_section(&args.results, &slug, &table)?;
    Ok(table)
}

/// The file-name and section-marker form of a table label.
pub(super) fn slug(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The command that wrote a table, with the arguments that need it quoted.
pub(super) fn command_line() -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .map(|a| {
            if a.is_empty()
                || a.contains(|c: char| c.is_whitespace() || "'\"$`\\;&|<>()*?".contains(c))
            {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect();
    format!("cargo run --release -- {}", args.join(" "))
}

/// The test columns every table shows: NDCG@10, NDCG@20, HR@10, HR@20 and
/// MRR@10, as Markdown cells.
pub(super) fn test_cells(m: &Metrics) -> String {
    [
        metric(m, Metrics::ndcg, 10),
        metric(m, Metrics::ndcg, 20),
        metric(m, Metrics::hr, 10),
        metric(m, Metrics::hr, 20),
        metric(m, Metrics::mrr, 10),
    ]
    .join(" | ")
}

pub(super) fn metric(m: &Metrics, f: fn(&Metrics, usize) -> Option<f64>, k: usize) -> String {
    f(m, k).map_or("–".into(), |x| format!("{x:.4}"))
}

/// The Markdown section of one dataset.
fn render(
    label: &str,
    results: &[RunResult],
    train: &TrainConfig,
    dtrec_selection: EpochSelection,
    t_max: usize,
    command: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {label}\n");
    let selection = match dtrec_selection {
        EpochSelection::Served => {
            " DTRec's epochs are validated under its served halting rule (thresholds \
             calibrated at every epoch), the baselines' at fixed depth."
        }
        EpochSelection::FixedDepth => "",
    };
    let _ = writeln!(
        out,
        "Leave-one-out, full ranking over all items, seed {}, batch {}, lr {}, at most {} epochs \
         (patience {}), T_max = {t_max} for every reasoning family; the halting thresholds are \
         calibrated on validation (tolerance {:.0}% of full-depth NDCG@10). Test figures of the \
         best validation epoch.{selection} \"Reasoning\" is the reasoning-step FLOPs relative \
         to the same model at fixed T_max; \"MFLOPs\" is the total per user (encoder, steps, \
         halting indicators, scoring).\n",
        train.seed,
        train.batch_size,
        describe_lr(train),
        train.max_epochs,
        train.patience,
        100.0 * train.halting.tolerance
    );
    let header = |out: &mut String| {
        let _ = writeln!(
            out,
            "| model | halting | NDCG@10 | NDCG@20 | HR@10 | HR@20 | MRR@10 | avg steps | reasoning | MFLOPs | valid NDCG@10 | best epoch |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    };
    let row = |out: &mut String, model: &str, r: &RunResult, row: &RuleRow| {
        let c = &row.compute;
        let _ = writeln!(
            out,
            "| {model} | {} | {} | {:.2} | {:.0}% | {:.2} | {} | {} of {} |",
            row.rule.name(),
            test_cells(&row.test),
            c.avg_steps,
            100.0 * c.relative_reasoning(),
            c.total_flops() / 1e6,
            metric(&row.valid, Metrics::ndcg, 10),
            r.best_epoch + 1,
            r.epochs
        );
    };
    let name = |r: &RunResult| match (r.family, r.hps) {
        (Family::Sasrec, _) => "SASRec".to_string(),
        (Family::RearecErl, _) => "ReaRec-ERL".to_string(),
        (Family::RearecPrl, _) => "ReaRec-PRL".to_string(),
        (Family::Dtrec, HpsVariant::Off) => "DTRec without HPS".to_string(),
        (Family::Dtrec, v) => format!("DTRec (HPS {})", v.name()),
    };
    let rule_of =
        |r: &RunResult, rule: HaltingRule| r.rules.iter().find(|x| x.rule == rule).cloned();
    // DTRec's HPS variant is a choice: the one with the best validation
    // NDCG@10 at the served halting rule is "DTRec" in the main table
    let valid_at = |r: &RunResult| {
        rule_of(r, train.halting.rule)
            .and_then(|x| x.valid.ndcg(10))
            .unwrap_or(f64::NEG_INFINITY)
    };
    let chosen = results
        .iter()
        .filter(|r| r.family == Family::Dtrec && r.hps != HpsVariant::Off)
        .max_by(|a, b| valid_at(a).total_cmp(&valid_at(b)));
    let _ = writeln!(
        out,
        "**Four families** (baselines at fixed depth; DTRec with its served halting rule, `{}`):\n",
        train.halting.rule.name()
    );
    header(&mut out);
    for r in results.iter().filter(|r| r.family != Family::Dtrec) {
        if let Some(x) = rule_of(r, HaltingRule::Fixed) {
            row(&mut out, &name(r), r, &x);
        }
    }
    if let Some(r) = chosen {
        if let Some(x) = rule_of(r, train.halting.rule) {
            row(&mut out, &format!("**{}**", name(r)), r, &x);
        }
        let _ = writeln!(
            out,
            "\nDTRec's HPS variant is chosen on validation NDCG@10: `{}` ({:.4}).",
            r.hps.name(),
            valid_at(r)
        );
    }
    let dtrec_runs: Vec<&RunResult> = results
        .iter()
        .filter(|r| r.family == Family::Dtrec)
        .collect();
    if !dtrec_runs.is_empty() {
        let _ = writeln!(out, "\n**DTRec ablations** (every HPS variant × every halting rule; `fixed` = no ARH, T_max steps for every user):\n");
        header(&mut out);
        for r in dtrec_runs {
            for x in &r.rules {
                row(&mut out, &name(r), r, x);
            }
        }
    }
    let _ = writeln!(out, "\nCommand: `{command}`");
    out
}

/// Replaces (or appends) the section between `<!-- experiment:SLUG -->`
/// and `<!-- /experiment:SLUG -->` of `path`, atomically.
pub(super) fn replace_section(path: &Path, slug: &str, table: &str) -> Result<(), String> {
    let (open, close) = (
        format!("<!-- experiment:{slug} -->"),
        format!("<!-- /experiment:{slug} -->"),
    );
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{open}\n{table}{close}");
    let updated = match (text.find(&open), text.find(&close)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{block}{}", &text[..a], &text[b + close.len()..])
        }
        _ => format!("{}\n{block}\n", text.trim_end()),
    };
    dtrec::io::write_atomic(path, updated.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}
