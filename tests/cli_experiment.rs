//! `dtrec experiment` reuses a cached run only when it was trained with the
//! same model AND training settings: a changed training setting retrains
//! instead of silently reporting the old model, while settings the run never
//! reads (HPS settings of a run without HPS) do not.

use std::path::Path;
use std::process::Command;

/// Runs `dtrec experiment` on a tiny synthetic dataset; returns stderr.
fn experiment(dir: &Path, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dtrec"))
        .args(["experiment", "--synthetic-users", "60", "--split", "loo"])
        .args(["--d", "8", "--heads", "1", "--inner", "8", "--max-len", "8"])
        .args(["--epochs", "1", "--threads", "1", "--t-max", "1"])
        .arg("--work-dir")
        .arg(dir.join("work"))
        .arg("--results")
        .arg(dir.join("RESULTS.md"))
        .args(extra)
        .args(if extra.contains(&"--runs") {
            &[][..]
        } else {
            &["--runs", "sasrec"][..]
        })
        .output()
        .expect("the dtrec binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "experiment failed:\n{stderr}");
    stderr
}

#[test]
fn cached_runs_are_reused_only_with_the_same_training_settings() {
    let dir = std::env::temp_dir().join(format!("dtrec-cli-experiment-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // whether a run's saved model has DTRec's contrastive option on
    let served = |run: &str| {
        let work = dir
            .join("work")
            .join("built-in-synthetic-dataset--60-users-");
        let bytes = std::fs::read(work.join(format!("{run}.served.safetensors"))).unwrap();
        String::from_utf8_lossy(&bytes).contains(r#"dtrec_contrastive\":true"#)
    };

    let first = experiment(&dir, &["--lr", "0.001"]);
    assert!(first.contains("== training sasrec"), "{first}");
    let again = experiment(&dir, &["--lr", "0.001"]);
    assert!(again.contains("sasrec: trained already"), "{again}");
    let flag = experiment(&dir, &["--lr", "0.001", "--dtrec-contrastive"]);
    assert!(flag.contains("sasrec: trained already"), "{flag}");
    assert!(!served("sasrec"), "the baselines ignore the flag");
    // so do they choosing epochs under the served halting: they are reported at fixed depth
    let select = experiment(&dir, &["--lr", "0.001", "--select-on", "served"]);
    assert!(select.contains("sasrec: trained already"), "{select}");
    // SASRec has no process supervision: its HPS settings do not shape it
    let other_hps = experiment(&dir, &["--lr", "0.001", "--lambda-hps", "0.5"]);
    assert!(other_hps.contains("sasrec: trained already"), "{other_hps}");
    // while DTRec's HPS settings do
    let dtrec = ["--runs", "dtrec", "--lr", "0.001"];
    let first = experiment(&dir, &dtrec);
    assert!(first.contains("== training dtrec"), "{first}");
    let lambda = experiment(&dir, &[&dtrec[..], &["--lambda-hps", "0.5"]].concat());
    assert!(lambda.contains("== training dtrec"), "{lambda}");
    let hps = [&dtrec[..], &["--lambda-hps", "0.5", "--hps-epsilon", "0.5"]].concat();
    let epsilon = experiment(&dir, &hps);
    assert!(epsilon.contains("== training dtrec"), "{epsilon}");
    let schedule = experiment(&dir, &[&hps[..], &["--hps-epsilon-last", "1"]].concat());
    assert!(schedule.contains("== training dtrec"), "{schedule}");
    let items = experiment(
        &dir,
        &[&hps[..], &["--hps-item-gradient", "target"]].concat(),
    );
    assert!(items.contains("== training dtrec"), "{items}");
    let marginal = experiment(
        &dir,
        &[&hps[..], &["--hps-cluster-target", "marginal"]].concat(),
    );
    assert!(marginal.contains("== training dtrec"), "{marginal}");
    // DTRec with PRL's noise view is another model; the baselines ignore the flag
    let noise_view = experiment(&dir, &[&hps[..], &["--dtrec-contrastive"]].concat());
    assert!(noise_view.contains("== training dtrec"), "{noise_view}");
    // for DTRec, epochs chosen under the served halting are another run, and the table says so
    let select = [&hps[..], &["--dtrec-contrastive", "--select-on", "served"]].concat();
    let by_served = experiment(&dir, &select);
    assert!(by_served.contains("== training dtrec"), "{by_served}");
    let section = std::fs::read_to_string(dir.join("RESULTS.md")).unwrap();
    assert!(
        section.contains("DTRec's epochs are validated under its served halting rule"),
        "{section}"
    );
    let again = experiment(&dir, &select);
    assert!(again.contains("dtrec: trained already"), "{again}");
    assert!(served("dtrec"), "the saved DTRec model records the option");
    let with_dtrec = std::fs::read_to_string(dir.join("RESULTS.md")).unwrap();
    assert!(with_dtrec.contains("**DTRec ablations**"), "{with_dtrec}");
    // the parameters' moving average is another run of every family
    let averaged = experiment(&dir, &["--lr", "0.001", "--ema-decay", "0.9"]);
    assert!(averaged.contains("== training sasrec"), "{averaged}");
    // so is the cosine learning rate, which the log and the table header name
    let cosine = experiment(&dir, &["--lr", "0.001", "--lr-schedule", "cosine"]);
    assert!(cosine.contains("== training sasrec"), "{cosine}");
    assert!(cosine.contains("lr 0.001 cosine-annealed"), "{cosine}");
    let annealed = std::fs::read_to_string(dir.join("RESULTS.md")).unwrap();
    assert!(annealed.contains("lr 0.001 cosine-annealed"), "{annealed}");
    let changed = experiment(&dir, &["--lr", "0.002"]);
    assert!(
        changed.contains("another model or training configuration, retraining"),
        "{changed}"
    );
    assert!(changed.contains("== training sasrec"), "{changed}");
    let results = std::fs::read_to_string(dir.join("RESULTS.md")).unwrap();
    assert!(results.contains("| SASRec |"), "{results}");
    // a section without DTRec runs has no (empty) ablation table
    assert!(!results.contains("DTRec ablations"), "{results}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `dtrec train` with `flag value` fails, and its message names the flag,
/// the value and each valid spelling (in backquotes).
fn assert_refused_naming_the_valid_ones(flag: &str, value: &str, valid: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_dtrec"))
        .args(["train", "--synthetic-users", "60", "--split", "loo"])
        .args([flag, value])
        .output()
        .expect("the dtrec binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(flag) && stderr.contains(value), "{stderr}");
    for name in valid {
        assert!(stderr.contains(&format!("`{name}`")), "{name}: {stderr}");
    }
}

#[test]
fn an_unknown_learning_rate_schedule_is_refused_naming_the_valid_ones() {
    assert_refused_naming_the_valid_ones("--lr-schedule", "linear", &["constant", "cosine"]);
}

#[test]
fn an_unknown_epoch_selection_is_refused_naming_the_valid_ones() {
    assert_refused_naming_the_valid_ones("--select-on", "best", &["fixed-depth", "served"]);
}

#[test]
fn an_unknown_cluster_target_is_refused_naming_the_valid_ones() {
    assert_refused_naming_the_valid_ones(
        "--hps-cluster-target",
        "popular",
        &["uniform", "marginal"],
    );
}

#[test]
fn a_fraction_outside_zero_to_one_is_refused_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("dtrec-cli-epsilon-{}", std::process::id()));
    for (flag, field) in [
        ("--hps-epsilon", "`hps.epsilon`"),
        ("--hps-epsilon-last", "`hps.epsilon_last`"),
        ("--ema-decay", "`ema_decay`"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_dtrec"))
            .args(["experiment", "--synthetic-users", "60", "--split", "loo"])
            .args(["--runs", "dtrec-cluster-soft", flag, "1.5"])
            .arg("--work-dir")
            .arg(dir.join("work"))
            .arg("--results")
            .arg(dir.join("RESULTS.md"))
            .output()
            .expect("the dtrec binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(field) && stderr.contains("1.5"),
            "{flag}: {stderr}"
        );
        assert!(!dir.join("RESULTS.md").exists());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
