//! `dtrec select` chooses each family's run on validation NDCG@10 across
//! experiment directories and reports the chosen run's test figures.

use std::path::{Path, PathBuf};
use std::process::Command;

fn dtrec(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dtrec"))
        .args(args)
        .output()
        .expect("the dtrec binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "dtrec {args:?} failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tiny two-run experiment at temperature `tau` under `work`, named
/// `tiny-tau<tau>-seed<seed>`, with `extra` flags.
fn experiment(work: &Path, results: &Path, tau: &str, seed: &str, extra: &[&str]) {
    let name = format!("tiny-tau{tau}-seed{seed}");
    let runs = ["--t-max", "1", "--tau", tau, "--runs", "sasrec,dtrec"];
    tiny_experiment(work, results, &name, seed, &[&runs[..], extra].concat());
}

/// A tiny experiment named `name` under `work`, with `extra` flags.
fn tiny_experiment(work: &Path, results: &Path, name: &str, seed: &str, extra: &[&str]) {
    let mut args = vec![
        "experiment",
        "--seed",
        seed,
        "--synthetic-users",
        "80",
        "--split",
        "loo",
        "--d",
        "8",
        "--heads",
        "1",
        "--inner",
        "8",
        "--max-len",
        "8",
        "--epochs",
        "2",
        "--name",
        name,
        "--work-dir",
        work.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ];
    if !extra.contains(&"--threads") {
        args.extend(["--threads", "1"]);
    }
    args.extend(extra);
    dtrec(&args);
}

/// (validation, test) NDCG@10 of `run` under `rule` in a work directory.
fn ndcg10(dir: &Path, run: &str, rule: &str) -> (f64, f64) {
    let text = std::fs::read_to_string(dir.join(format!("{run}.result.json"))).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let row = json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)
        .unwrap_or_else(|| panic!("{run} has a {rule} row"));
    let at10 = |m: &serde_json::Value| {
        m["at"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["k"] == 10)
            .unwrap()["ndcg"]
            .as_f64()
            .unwrap()
    };
    (at10(&row["valid"]), at10(&row["test"]))
}

/// A fresh scratch directory for one test: (it, its work dir, its RESULTS.md).
fn scratch(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("dtrec-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (work, results) = (dir.join("work"), dir.join("RESULTS.md"));
    (dir, work, results)
}

/// Copies an experiment work directory's files to `to`; returns `to`.
fn copy_run_dir(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
    to.to_path_buf()
}

/// Sets NDCG@10 of every rule's validation and test metrics in a run's
/// result file to `value`.
fn set_ndcg10(result: &Path, value: f64) {
    let text = std::fs::read_to_string(result).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    for rule in json["rules"].as_array_mut().unwrap() {
        for split in ["valid", "test"] {
            for at in rule[split]["at"].as_array_mut().unwrap() {
                if at["k"] == 10 {
                    at["ndcg"] = value.into();
                }
            }
        }
    }
    std::fs::write(result, serde_json::to_string(&json).unwrap()).unwrap();
}

/// The rows of `family` in the "Searched" table.
fn searched_rows<'a>(table: &'a str, family: &str) -> Vec<&'a str> {
    table
        .lines()
        .skip_while(|l| !l.starts_with("**Searched**"))
        .take_while(|l| !l.starts_with("**Chosen**"))
        .filter(|l| l.starts_with(&format!("| {family} |")))
        .collect()
}

/// The row of `family` in the table under the paragraph starting `heading`.
fn table_row<'a>(table: &'a str, heading: &str, family: &str) -> &'a str {
    table
        .lines()
        .skip_while(|l| !l.starts_with(heading))
        .find(|l| l.starts_with(&format!("| {family} |")))
        .unwrap_or_else(|| panic!("a {family} row under {heading} in\n{table}"))
}

#[test]
fn select_reports_the_run_with_the_best_validation_score() {
    let (dir, work, results) = scratch("select");
    experiment(&work, &results, "1", "42", &[]);
    experiment(&work, &results, "0.5", "42", &[]);
    let dirs = [
        work.join("tiny-tau1-seed42"),
        work.join("tiny-tau0-5-seed42"),
    ];

    let from = format!("{},{}", dirs[0].display(), dirs[1].display());
    let table = dtrec(&[
        "select",
        "--from",
        &from,
        "--name",
        "tiny, chosen",
        "--results",
        results.to_str().unwrap(),
    ]);
    let written = std::fs::read_to_string(&results).unwrap();
    assert!(
        written.contains("<!-- experiment:tiny--chosen -->"),
        "{written}"
    );
    assert!(written.contains(table.trim_end()), "{written}");

    for (run, family, rule) in [
        ("sasrec", "SASRec", "fixed"),
        ("dtrec", "DTRec", "threshold"),
    ] {
        let scores: Vec<(f64, f64)> = dirs.iter().map(|d| ndcg10(d, run, rule)).collect();
        let best = if scores[1].0 > scores[0].0 { 1 } else { 0 };
        let tau = ["τ 1,", "τ 0.5,"][best];
        let chosen = table_row(&table, "**Chosen**", family);
        assert!(chosen.contains(tau), "{family}: expected {tau} in {chosen}");
        let budget = "≤ 2 epochs, patience 10";
        assert!(
            chosen.contains(budget),
            "{family}: expected {budget} in {chosen}"
        );
        let test = format!("| {:.4} |", scores[best].1);
        assert!(
            chosen.contains(&test),
            "{family}: expected {test} in {chosen}"
        );
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_dtrec"))
        .args(["select", "--from", dir.join("missing").to_str().unwrap()])
        .args(["--name", "x", "--results", results.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("missing"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn select_averages_each_chosen_setting_over_its_replicate_seeds() {
    let (dir, work, results) = scratch("select-seeds");
    // The replicates train on two threads, the first seed on one: a thread
    // count changes only the order of sums, so they match.
    for tau in ["1", "0.5"] {
        experiment(&work, &results, tau, "42", &[]);
        experiment(&work, &results, tau, "7", &["--threads", "2"]);
    }
    let dir_of = |tau: &str, seed: &str| work.join(format!("tiny-tau{tau}-seed{seed}"));
    let from = format!(
        "{},{}",
        dir_of("1", "42").display(),
        dir_of("0-5", "42").display()
    );
    let select = |replicates: String| {
        dtrec(&[
            "select",
            "--from",
            &from,
            "--replicates",
            &replicates,
            "--name",
            "tiny, seeds",
            "--results",
            results.to_str().unwrap(),
        ])
    };
    let (seven_1, seven_05) = (dir_of("1", "7"), dir_of("0-5", "7"));
    let table = select(format!("{},{}", seven_05.display(), seven_1.display()));
    let reversed = select(format!("{},{}", seven_1.display(), seven_05.display()));
    assert_eq!(
        table.split("Command:").next(),
        reversed.split("Command:").next(),
        "the order of the replicate directories must not matter"
    );

    for (run, family, rule) in [
        ("sasrec", "SASRec", "fixed"),
        ("dtrec", "DTRec", "threshold"),
    ] {
        let valid_at = |tau: &str| ndcg10(&dir_of(tau, "42"), run, rule).0;
        let tau = if valid_at("0-5") > valid_at("1") {
            "0-5"
        } else {
            "1"
        };
        let (v42, t42) = ndcg10(&dir_of(tau, "42"), run, rule);
        let (v7, t7) = ndcg10(&dir_of(tau, "7"), run, rule);
        let row = table_row(&table, "**Chosen, over seeds**", family);
        assert!(row.contains("| 42, 7 |"), "{family}: two seeds in {row}");
        let sd = |a: f64, b: f64| ((a - b).powi(2) / 2.0).sqrt();
        let test = format!("| {:.4} ± {:.4} |", (t42 + t7) / 2.0, sd(t42, t7));
        assert!(row.contains(&test), "{family}: expected {test} in {row}");
        let valid = format!("| {:.4} ± {:.4} |", (v42 + v7) / 2.0, sd(v42, v7));
        assert!(
            row.ends_with(&valid),
            "{family}: expected {valid} at the end of {row}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn select_labels_every_searched_setting_and_refuses_runs_it_cannot_tell_apart() {
    let (dir, work, results) = scratch("select-labels");
    let dtrec_at = |name: &str, extra: &[&str]| {
        let mut flags = vec!["--t-max", "2", "--tau", "0.5"];
        if !extra.contains(&"--runs") {
            flags.extend(["--runs", "dtrec"]);
        }
        flags.extend(extra);
        tiny_experiment(&work, &results, name, "42", &flags);
        work.join(name)
    };
    let plain = dtrec_at("plain", &[]);
    let later = dtrec_at(
        "later",
        &[
            "--hps-first-step",
            "1",
            "--dropout",
            "0.2",
            "--runs",
            "dtrec-cluster-soft",
            "--hps-item-gradient",
            "target",
            "--hps-cluster-target",
            "marginal",
            "--ema-decay",
            "0.99",
            "--lr-schedule",
            "cosine",
            "--select-on",
            "served",
        ],
    );
    let two_threads = dtrec_at("threads", &["--threads", "2"]);

    let select = |dirs: &[&PathBuf]| {
        let from: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        Command::new(env!("CARGO_BIN_EXE_dtrec"))
            .args(["select", "--from", &from.join(",")])
            .args(["--name", "tiny, labels", "--results"])
            .arg(&results)
            .output()
            .unwrap()
    };
    let out = select(&[&plain, &later]);
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let searched = searched_rows(&table, "DTRec");
    assert_eq!(searched.len(), 2, "both runs are candidates:\n{table}");
    let (plain_row, later_row) = (searched[0], searched[1]);
    assert!(plain_row.contains("/plain/dtrec"), "{plain_row}");
    assert!(!plain_row.contains("HPS from"), "{plain_row}");
    assert!(!plain_row.contains("dropout"), "{plain_row}");
    assert!(!plain_row.contains("item gradient"), "{plain_row}");
    assert!(!plain_row.contains("cluster target"), "{plain_row}");
    assert!(!plain_row.contains("parameter average"), "{plain_row}");
    assert!(!plain_row.contains("learning rate"), "{plain_row}");
    assert!(!plain_row.contains("epochs chosen"), "{plain_row}");
    assert!(later_row.contains("/later/dtrec"), "{later_row}");
    assert!(
        later_row.contains("dropout 0.2")
            && later_row.contains("HPS from h_1")
            && later_row.contains("item gradient target")
            && later_row.contains("cluster target marginal")
            && later_row.contains("parameter average β 0.99")
            && later_row.contains("cosine learning rate")
            && later_row.contains("epochs chosen under the served halting"),
        "{later_row}"
    );

    // a copy of a listed run is kept once, silently; a re-run with the same
    // settings but another outcome (here: edited figures, as if trained on
    // later code) is listed under the table, never chosen from
    let copy = copy_run_dir(&plain, &dir.join("copy"));
    let rerun = copy_run_dir(&plain, &dir.join("rerun"));
    set_ndcg10(&rerun.join("dtrec.result.json"), 0.987);
    let out = select(&[&plain, &copy, &rerun]);
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let searched = searched_rows(&table, "DTRec").len();
    assert_eq!(searched, 1, "one candidate for one setting:\n{table}");
    let chosen = table_row(&table, "**Chosen**", "DTRec");
    assert!(!chosen.contains("0.9870"), "{chosen}");
    let rerun_row = table_row(&table, "**Re-runs", "DTRec");
    assert!(
        rerun_row.contains("/rerun/dtrec")
            && rerun_row.contains("/plain/dtrec")
            && rerun_row.contains("| 0.9870 | 0.9870 |"),
        "{rerun_row}"
    );
    assert!(!table.contains("/copy/dtrec"), "{table}");
    let out = select(&[&plain, &copy]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!table.contains("**Re-runs"), "{table}");

    // the 2-thread run trains other bits under the same label: an error,
    // not a silently dropped candidate
    let out = select(&[&plain, &two_threads]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("labelled alike") && stderr.contains("threads"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
