//! `dtrec select`: chooses each family's configuration on validation data
//! across several `experiment` work directories (one per searched setting:
//! T_max, τ, λ_HPS, …) and writes the chosen runs' test figures into a
//! section of a Markdown file, so the search behind a headline table is a
//! command, not a hand-made choice. With `--replicates`, the chosen
//! settings' runs under other seeds are averaged into a further table; they
//! never take part in the choice.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::experiment::{
    command_line, metric, replace_section, slug, test_cells, RunResult, TrainingInfo,
};
use crate::cli::parse_name;
use dtrec::eval::Metrics;
use dtrec::io::config_from_file;
use dtrec::io::ModelFile;
use dtrec::model::prototypes::HierarchyLayout;
use dtrec::model::{Family, ModelConfig};
use dtrec::model::{HaltingRule, HpsVariant};
use dtrec::train::{EpochSelection, TrainConfig};

/// Arguments of the select command.
#[derive(clap::Args, Debug, Clone)]
pub struct SelectArgs {
    /// Comma-separated `experiment` work directories to choose from
    /// (e.g. target/experiments/beauty,target/experiments/beauty-t2).
    #[arg(long, value_delimiter = ',', required = true)]
    pub from: Vec<PathBuf>,
    /// Label of the table.
    #[arg(long)]
    pub name: String,
    /// Markdown file whose section for this label is (re)written.
    #[arg(long, default_value = "RESULTS.md")]
    pub results: PathBuf,
    /// The halting rule DTRec is served, chosen and reported with (the
    /// baselines always run at fixed depth): fixed, threshold or learned.
    #[arg(long, default_value = "threshold")]
    pub halting: String,
    /// Comma-separated `experiment` work directories of the same settings
    /// trained with other seeds. They are not chosen from: each chosen
    /// run's matches in them (same model and training settings, another
    /// seed, any thread count) are reported with it as mean ± standard
    /// deviation.
    #[arg(long, value_delimiter = ',')]
    pub replicates: Vec<PathBuf>,
}

/// The groups a configuration is chosen within.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Sasrec,
    Erl,
    Prl,
    /// DTRec with process supervision (any HPS variant).
    Dtrec,
    /// The ablation without HPS, chosen on its own.
    DtrecNoHps,
}

impl Group {
    fn of(r: &RunResult) -> Group {
        match (r.family, r.hps) {
            (Family::Sasrec, _) => Group::Sasrec,
            (Family::RearecErl, _) => Group::Erl,
            (Family::RearecPrl, _) => Group::Prl,
            (Family::Dtrec, HpsVariant::Off) => Group::DtrecNoHps,
            (Family::Dtrec, _) => Group::Dtrec,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Group::Sasrec => "SASRec",
            Group::Erl => "ReaRec-ERL",
            Group::Prl => "ReaRec-PRL",
            Group::Dtrec => "DTRec",
            Group::DtrecNoHps => "DTRec without HPS (ablation)",
        }
    }
}

/// One trained run that can be chosen.
struct Candidate {
    group: Group,
    /// T_max, τ, the epoch budget, (with HPS) the variant and λ_HPS, and
    /// every other setting that differs from the defaults.
    setting: String,
    /// Where it was read: `<work dir>/<run>`.
    source: String,
    result: RunResult,
    rule: HaltingRule,
    model: ModelConfig,
    /// The recorded training settings; absent in old caches.
    train: Option<TrainConfig>,
}

/// A run of a setting already listed, trained alike but with another
/// outcome (e.g. on later code): reported, never chosen from.
struct Rerun {
    /// The source of the listed run that stands for the setting.
    stands_for: String,
    run: Candidate,
}

impl Candidate {
    fn row(&self) -> &super::experiment::RuleRow {
        self.result
            .rules
            .iter()
            .find(|x| x.rule == self.rule)
            .expect("candidates carry their rule")
    }

    fn valid_ndcg10(&self) -> f64 {
        self.row().valid.ndcg(10).unwrap_or(f64::NEG_INFINITY)
    }
}

/// Reads every finished run of one work directory.
fn candidates_in(dir: &Path, served: HaltingRule) -> Result<Vec<Candidate>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|n| n.strip_suffix(".result.json").map(str::to_string))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for run in names {
        let path = dir.join(format!("{run}.result.json"));
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let result: RunResult =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let model_path = dir.join(format!("{run}.best.safetensors"));
        let model = ModelFile::read(&model_path)
            .and_then(|file| config_from_file(&file))
            .map_err(|e| format!("{}: {e}", model_path.display()))?;
        let tau = model.tau;
        let info_path = dir.join(format!("{run}.train.json"));
        let info: TrainingInfo = serde_json::from_str(
            &std::fs::read_to_string(&info_path)
                .map_err(|e| format!("{}: {e}", info_path.display()))?,
        )
        .map_err(|e| format!("{}: {e}", info_path.display()))?;
        let group = Group::of(&result);
        let rule = match group {
            Group::Dtrec | Group::DtrecNoHps => served,
            _ => HaltingRule::Fixed,
        };
        let Some(row) = result.rules.iter().find(|x| x.rule == rule) else {
            return Err(format!(
                "{}: no `{}` row to choose by",
                path.display(),
                rule.name()
            ));
        };
        let budget = info
            .train
            .as_ref()
            .map_or("budget not recorded".to_string(), |t| {
                format!("≤ {} epochs, patience {}", t.max_epochs, t.patience)
            });
        let mut setting = match group {
            Group::Sasrec => format!("τ {tau}, {budget}"),
            _ => format!("T_max {}, τ {tau}, {budget}", result.t_max),
        };
        if row.compute.adaptive {
            let space = row.compute.indicator_space.name();
            let _ = write!(setting, ", indicators over {space}");
        }
        if group == Group::Dtrec {
            let lambda = info
                .train
                .as_ref()
                .map_or("not recorded".to_string(), |t| t.hps.lambda.to_string());
            let _ = write!(setting, ", `{}`, λ_HPS {lambda}", result.hps.name());
        }
        for extra in non_default_settings(group, &model, info.train.as_ref()) {
            let _ = write!(setting, ", {extra}");
        }
        out.push(Candidate {
            group,
            setting,
            source: format!("{}/{run}", dir.display()),
            result,
            rule,
            model,
            train: info.train,
        });
    }
    Ok(out)
}

/// Chooses per group on validation NDCG@10 (the first listed wins a tie;
/// a setting met again in a later directory is kept once: a copy, e.g. a
/// copied baseline, silently, and a re-run with another outcome, e.g. the
/// same settings trained on later code, listed under the table as not
/// chosen from; two runs labelled alike but trained differently are an
/// error, never a silently dropped candidate); writes and returns the
/// section.
pub fn select(args: &SelectArgs) -> Result<String, String> {
    let served: HaltingRule =
        parse_name("halting", &Some(args.halting.clone()))?.expect("the flag has a default");
    let mut all: Vec<Candidate> = Vec::new();
    let mut reruns: Vec<Rerun> = Vec::new();
    for dir in &args.from {
        for c in candidates_in(dir, served)? {
            match all
                .iter()
                .find(|x| x.group == c.group && x.setting == c.setting)
            {
                None => all.push(c),
                Some(x) if trained_alike(x, &c) => {
                    if x.row().valid != c.row().valid || x.row().test != c.row().test {
                        reruns.push(Rerun {
                            stands_for: x.source.clone(),
                            run: c,
                        });
                    }
                }
                Some(x) => {
                    return Err(format!(
                        "{} and {} are labelled alike (`{}`) but were trained \
                         with different settings",
                        x.source, c.source, c.setting
                    ))
                }
            }
        }
    }
    if all.is_empty() {
        return Err("no finished runs in the given directories".into());
    }
    let mut groups: Vec<Group> = all.iter().map(|c| c.group).collect();
    groups.sort();
    groups.dedup();
    let chosen: Vec<&Candidate> = groups
        .iter()
        .map(|&g| {
            all.iter()
                .filter(|c| c.group == g)
                .fold(None::<&Candidate>, |best, c| match best {
                    Some(b) if b.valid_ndcg10() >= c.valid_ndcg10() => Some(b),
                    _ => Some(c),
                })
                .expect("every group has a candidate")
        })
        .collect();
    let mut table = render(&args.name, &all, &chosen, served);
    table.push_str(&render_reruns(&reruns));
    if !args.replicates.is_empty() {
        let mut replicas: Vec<Candidate> = Vec::new();
        for dir in &args.replicates {
            replicas.extend(candidates_in(dir, served)?);
        }
        let replicated: Vec<Vec<&Candidate>> =
            chosen.iter().map(|&c| seeds_of(c, &replicas)).collect();
        table.push_str(&render_replicated(&replicated));
    }
    let _ = writeln!(table, "\nCommand: `{}`", command_line());
    replace_section(&args.results, &slug(&args.name), &table)?;
    Ok(table)
}

/// The settings of a run that differ from the defaults and are not in the
/// rest of its label (T_max, τ, the budget, the indicator space, the HPS
/// variant and λ), e.g. `HPS from h_1` or `dropout 0.2`, so that every run
/// a search can vary gets a label of its own.
fn non_default_settings(
    group: Group,
    model: &ModelConfig,
    train: Option<&TrainConfig>,
) -> Vec<String> {
    let base = ModelConfig::sasrec(model.n_items);
    let mut out: Vec<String> = changed([
        field("d", model.d, base.d),
        field("layers", model.n_layers, base.n_layers),
        field("heads", model.n_heads, base.n_heads),
        field("inner", model.inner, base.inner),
        field("L", model.max_len, base.max_len),
        field("dropout", model.dropout, base.dropout),
        field("attention dropout", model.attn_dropout, base.attn_dropout),
    ]);
    if group != Group::Sasrec {
        out.extend(changed([field(
            "reasoning dropout",
            model.reasoning_dropout,
            base.reasoning_dropout,
        )]));
        if let Some(step) = model.step_dropout {
            out.push(format!("step dropout {step}"));
        }
        if model.dtrec_contrastive {
            out.push("PRL's contrastive view".into());
        }
    }
    let Some(train) = train else {
        return out;
    };
    let base = TrainConfig::default();
    out.extend(changed([
        field("lr", train.lr, base.lr),
        field("batch", train.batch_size, base.batch_size),
        field("weight decay", train.weight_decay, base.weight_decay),
        field("warm-up steps", train.warmup_steps, base.warmup_steps),
    ]));
    if train.lr_schedule != base.lr_schedule {
        out.push(format!("{} learning rate", train.lr_schedule.name()));
    }
    if let Some(decay) = train.ema_decay {
        out.push(format!("parameter average β {decay}"));
    }
    if train.select_on == EpochSelection::Served {
        out.push("epochs chosen under the served halting".into());
    }
    if matches!(group, Group::Dtrec | Group::DtrecNoHps) {
        let tolerance = (train.halting.tolerance, base.halting.tolerance);
        out.extend(changed([field("tolerance", tolerance.0, tolerance.1)]));
    }
    if group == Group::Dtrec {
        let (hps, base) = (&train.hps, &base.hps);
        if hps.first_step != base.first_step {
            out.push(format!("HPS from h_{}", hps.first_step));
        }
        if hps.variant == HpsVariant::ClusterSoft {
            out.extend(changed([field("ε", hps.epsilon, base.epsilon)]));
            if let Some(last) = hps.epsilon_last {
                out.push(format!("last step's ε {last}"));
            }
            if hps.cluster_target != base.cluster_target {
                out.push(format!("cluster target {}", hps.cluster_target.name()));
            }
            if hps.item_gradient != base.item_gradient {
                out.push(format!("item gradient {}", hps.item_gradient.name()));
            }
        }
        let layout = |l: HierarchyLayout| format!("{l:?}").to_lowercase();
        out.extend(changed([
            field("k_min", hps.k_min, base.k_min),
            field("hierarchy", layout(hps.layout), layout(base.layout)),
        ]));
        if let Some(tau_p) = hps.tau_p {
            out.push(format!("τ_p {tau_p}"));
        }
        out.extend(changed([field(
            "step τ growth",
            hps.step_tau_growth,
            base.step_tau_growth,
        )]));
        out.extend(changed([field(
            "k-means every",
            hps.kmeans_every,
            base.kmeans_every,
        )]));
    }
    out
}

/// One labelled setting: (name, value, default), as text.
fn field(name: &str, value: impl ToString, default: impl ToString) -> (&str, String, String) {
    (name, value.to_string(), default.to_string())
}

/// `name value` for each setting whose value is not its default.
fn changed<const N: usize>(fields: [(&str, String, String); N]) -> Vec<String> {
    fields
        .into_iter()
        .filter(|(_, value, default)| value != default)
        .map(|(name, value, _)| format!("{name} {value}"))
        .collect()
}

/// Whether two runs with the same label are the same training (e.g. a
/// baseline copied into another directory): the same model and training
/// settings, ignoring the settings the run's family never reads (HPS
/// outside DTRec, halting outside the reasoning families with ARH).
fn trained_alike(a: &Candidate, b: &Candidate) -> bool {
    if a.model != b.model {
        return false;
    }
    let normalised = |c: &Candidate| {
        c.train.clone().map(|mut t| {
            if c.group != Group::Dtrec {
                t.hps = Default::default();
            }
            if !matches!(c.group, Group::Dtrec | Group::DtrecNoHps) {
                t.halting = Default::default();
            }
            t
        })
    };
    match (normalised(a), normalised(b)) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// `chosen` followed by its matches among `replicas`: the same model
/// settings (family, T_max, …) and training settings (HPS variant, …) but
/// for the seed and the thread count (which changes only the order of
/// sums), so the same group and served rule, one run per seed. A run whose
/// training settings were not recorded has no matches.
fn seeds_of<'a>(chosen: &'a Candidate, replicas: &'a [Candidate]) -> Vec<&'a Candidate> {
    let mut runs = vec![chosen];
    let Some(train) = &chosen.train else {
        return runs;
    };
    for r in replicas {
        let Some(other) = &r.train else { continue };
        let same = r.model == chosen.model
            && TrainConfig {
                seed: train.seed,
                threads: train.threads,
                ..other.clone()
            } == *train;
        let new_seed = runs
            .iter()
            .all(|x| x.train.as_ref().map(|t| t.seed) != Some(other.seed));
        if same && new_seed {
            runs.push(r);
        }
    }
    runs
}

/// `mean ± sample standard deviation` (just the value for one run).
fn spread(values: &[f64], decimals: usize) -> String {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return format!("{mean:.decimals$}");
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    format!("{mean:.decimals$} ± {:.decimals$}", var.sqrt())
}

fn render_replicated(replicated: &[Vec<&Candidate>]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n**Chosen, over seeds** (test; mean ± sample standard deviation over the seeds \
         listed; the choice above used the first seed only):\n"
    );
    let _ = writeln!(
        out,
        "| family | setting | seeds | NDCG@10 | NDCG@20 | HR@10 | HR@20 | MRR@10 | avg steps | valid NDCG@10 |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for runs in replicated {
        let column = |f: fn(&Metrics, usize) -> Option<f64>, k: usize, valid: bool| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|c| f(if valid { &c.row().valid } else { &c.row().test }, k))
                .collect();
            if values.len() == runs.len() {
                spread(&values, 4)
            } else {
                "–".to_string()
            }
        };
        let seeds: Vec<String> = runs
            .iter()
            .map(|c| c.train.as_ref().map_or("?".into(), |t| t.seed.to_string()))
            .collect();
        let steps: Vec<f64> = runs.iter().map(|c| c.row().compute.avg_steps).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            runs[0].group.label(),
            runs[0].setting,
            seeds.join(", "),
            column(Metrics::ndcg, 10, false),
            column(Metrics::ndcg, 20, false),
            column(Metrics::hr, 10, false),
            column(Metrics::hr, 20, false),
            column(Metrics::mrr, 10, false),
            spread(&steps, 2),
            column(Metrics::ndcg, 10, true),
        );
    }
    out
}

fn render(label: &str, all: &[Candidate], chosen: &[&Candidate], served: HaltingRule) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {label}\n");
    let _ = writeln!(
        out,
        "Each family's configuration chosen on validation NDCG@10 (the baselines at fixed \
         depth, DTRec with the `{}` rule it serves) over every finished run of the listed \
         `experiment` directories; test figures of the chosen runs only.\n",
        served.name()
    );
    let _ = writeln!(out, "**Searched** (validation NDCG@10; chosen in bold):\n");
    let _ = writeln!(out, "| family | setting | valid NDCG@10 | run |");
    let _ = writeln!(out, "|---|---|---|---|");
    for c in all {
        let is_chosen = chosen.iter().any(|x| std::ptr::eq(*x, c));
        let valid = metric(&c.row().valid, Metrics::ndcg, 10);
        let valid = if is_chosen {
            format!("**{valid}**")
        } else {
            valid
        };
        let _ = writeln!(
            out,
            "| {} | {} | {valid} | `{}` |",
            c.group.label(),
            c.setting,
            c.source
        );
    }
    let _ = writeln!(out, "\n**Chosen** (test):\n");
    let _ = writeln!(
        out,
        "| family | setting | halting | NDCG@10 | NDCG@20 | HR@10 | HR@20 | MRR@10 | avg steps | reasoning | valid NDCG@10 | best epoch |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for c in chosen {
        let row = c.row();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} | {:.0}% | {} | {} of {} |",
            c.group.label(),
            c.setting,
            row.rule.name(),
            test_cells(&row.test),
            row.compute.avg_steps,
            100.0 * row.compute.relative_reasoning(),
            metric(&row.valid, Metrics::ndcg, 10),
            c.result.best_epoch + 1,
            c.result.epochs
        );
    }
    out
}

fn render_reruns(reruns: &[Rerun]) -> String {
    let mut out = String::new();
    if reruns.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\n**Re-runs, not chosen from** (a listed setting trained again with the same \
         settings but another outcome, e.g. on later code; the first listed run stands \
         for the setting):\n"
    );
    let _ = writeln!(
        out,
        "| family | setting | run | stands for | valid NDCG@10 | test NDCG@10 |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for Rerun { stands_for, run } in reruns {
        let _ = writeln!(
            out,
            "| {} | {} | `{}` | `{stands_for}` | {} | {} |",
            run.group.label(),
            run.setting,
            run.source,
            metric(&run.row().valid, Metrics::ndcg, 10),
            metric(&run.row().test, Metrics::ndcg, 10),
        );
    }
    out
}
