//! `dtrec select` chooses each family's run on validation NDCG@10 across
//! experiment directories and reports the chosen run's test figures.

use std::path::Path;
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

/// A tiny two-run experiment at temperature `tau` under `work`.
fn experiment(work: &Path, results: &Path, tau: &str) {
    let name = format!("tiny-tau{tau}");
    dtrec(&[
        "experiment",
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
        "--threads",
        "1",
        "--t-max",
        "1",
        "--tau",
        tau,
        "--runs",
        "sasrec,dtrec",
        "--name",
        &name,
        "--work-dir",
        work.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
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

#[test]
fn select_reports_the_run_with_the_best_validation_score() {
    let dir = std::env::temp_dir().join(format!("dtrec-cli-select-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (work, results) = (dir.join("work"), dir.join("RESULTS.md"));
    experiment(&work, &results, "1");
    experiment(&work, &results, "0.5");
    let dirs = [work.join("tiny-tau1"), work.join("tiny-tau0-5")];

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
        let chosen = table
            .lines()
            .skip_while(|l| !l.starts_with("**Chosen**"))
            .find(|l| l.starts_with(&format!("| {family} |")))
            .unwrap_or_else(|| panic!("a chosen {family} row in\n{table}"));
        assert!(chosen.contains(tau), "{family}: expected {tau} in {chosen}");
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
