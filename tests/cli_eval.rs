//! `dtrec eval --ranks-out` writes one row per evaluated sample whose ranks
//! reproduce the printed metrics, and `--breakdown` prints segments that
//! partition the samples.

use dtrec::lab::RANKS_HEADER;
use std::path::Path;
use std::process::Command;

fn dtrec(args: &[&str], extra: &[&Path]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dtrec"))
        .args(args)
        .args(extra)
        .output()
        .expect("the dtrec binary runs");
    assert!(
        out.status.success(),
        "dtrec {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The value in the `NDCG@K` column of the `K = 10` row of the metrics table
/// printed under `heading`.
fn printed_ndcg10(stdout: &str, heading: &str) -> f64 {
    let table = stdout
        .split_once(&format!("{heading}:\n"))
        .unwrap_or_else(|| panic!("no `{heading}` table in:\n{stdout}"))
        .1;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    let column = header
        .iter()
        .position(|c| *c == "NDCG@K")
        .expect("an NDCG@K column");
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some("10"))
        .expect("a K = 10 row");
    row.split_whitespace().nth(column).unwrap().parse().unwrap()
}

/// The synthetic data every test here evaluates on.
const DATA: [&str; 4] = ["--synthetic-users", "80", "--split", "loo"];

/// Trains a tiny two-step DTRec model for one epoch into `dir`.
fn train_tiny(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let model = dir.join("model.safetensors");
    dtrec(
        &[
            &["train"][..],
            &DATA,
            &[
                "--family", "dtrec", "--t-max", "2", "--d", "8", "--heads", "1",
            ],
            &[
                "--inner",
                "8",
                "--max-len",
                "8",
                "--epochs",
                "1",
                "--threads",
                "1",
            ],
            &["--out"],
        ]
        .concat(),
        &[&model],
    );
    model
}

#[test]
fn ranks_csv_reproduces_the_printed_metrics_and_the_breakdown_covers_every_sample() {
    let dir = std::env::temp_dir().join(format!("dtrec-cli-eval-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let model = train_tiny(&dir);
    let data = DATA;
    let ranks = dir.join("ranks.csv");
    let stdout = dtrec(
        &[&["eval"][..], &data, &["--breakdown", "--model"]].concat(),
        &[&model, Path::new("--ranks-out"), &ranks],
    );

    let csv = std::fs::read_to_string(&ranks).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("split,user,history_len,target,target_train_count,rank,steps")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    for split in ["validation", "test"] {
        let part: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == split).collect();
        assert_eq!(part.len(), 80, "one {split} sample per user");
        let ndcg: f64 = part
            .iter()
            .map(|r| {
                let rank: u32 = r[5].parse().unwrap();
                assert!(rank >= 1);
                let steps: u32 = r[6].parse().unwrap();
                assert!((1..=2).contains(&steps), "{r:?}");
                if rank <= 10 {
                    1.0 / f64::from(rank + 1).log2()
                } else {
                    0.0
                }
            })
            .sum::<f64>()
            / part.len() as f64;
        let printed = printed_ndcg10(&stdout, split);
        assert!(
            (ndcg - printed).abs() < 5e-5,
            "{split}: {ndcg} vs {printed}"
        );
    }
    // leave-one-out: the test history is the validation history plus one item
    let history = |split: &str, user: &str| -> usize {
        rows.iter().find(|r| r[0] == split && r[1] == user).unwrap()[2]
            .parse()
            .unwrap()
    };
    let user = rows[0][1];
    assert_eq!(history("test", user), history("validation", user) + 1);

    for split in ["validation", "test"] {
        let section = stdout
            .split_once(&format!("{split} by segment:\n"))
            .unwrap_or_else(|| panic!("no {split} breakdown in:\n{stdout}"))
            .1;
        let tables: Vec<&str> = section.splitn(3, "\n\n").take(2).collect();
        for table in tables {
            let samples: u64 = table
                .lines()
                .skip(2)
                .take_while(|l| l.starts_with('|'))
                .map(|l| l.split('|').nth(2).unwrap().trim().parse::<u64>().unwrap())
                .sum();
            assert_eq!(
                samples, 80,
                "segments partition the {split} samples:\n{table}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `dtrec compare` of the model's halting run (B) against its fixed-depth
/// run (A): the table's means are the two evals' printed NDCG@10, and files
/// of different data are refused with the file and the line.
#[test]
fn compare_pairs_two_ranks_files_of_one_model() {
    let dir = std::env::temp_dir().join(format!("dtrec-cli-compare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let model = train_tiny(&dir);
    let (halting, fixed) = (dir.join("halting.csv"), dir.join("fixed.csv"));
    let eval = |extra: &[&str], ranks: &Path| {
        dtrec(
            &[&["eval"][..], &DATA, extra, &["--model"]].concat(),
            &[&model, Path::new("--ranks-out"), ranks],
        )
    };
    let halting_out = eval(&[], &halting);
    let fixed_out = eval(&["--fixed-depth"], &fixed);
    let table = dtrec(&["compare"], &[&fixed, &halting]);

    for split in ["validation", "test"] {
        let row: Vec<&str> = table
            .lines()
            .find(|l| l.starts_with(&format!("| {split} | 80 | NDCG@10 |")))
            .unwrap_or_else(|| panic!("no {split} NDCG@10 row in:\n{table}"))
            .split('|')
            .map(str::trim)
            .collect();
        let (a, b): (f64, f64) = (row[4].parse().unwrap(), row[5].parse().unwrap());
        assert!(
            (a - printed_ndcg10(&fixed_out, split)).abs() < 1e-4,
            "{table}"
        );
        assert!(
            (b - printed_ndcg10(&halting_out, split)).abs() < 1e-4,
            "{table}"
        );
        assert_eq!(row[13], "2.00", "fixed depth runs both steps: {table}");
        let counts: u64 = row[10..13].iter().map(|c| c.parse::<u64>().unwrap()).sum();
        assert_eq!(
            counts, 80,
            "every sample is a win, a loss or a tie: {table}"
        );
    }

    // the same pair twice, pooled as two seeds: the pooled difference is the
    // pair's, and a pair scored on other samples is refused by its run number
    let pooled = dtrec(
        &["compare"],
        &[&fixed, &halting, Path::new("--pair"), &fixed, &halting],
    );
    let (single, over_seeds) = pooled.split_at(pooled.find("Over seeds").expect(&pooled));
    assert_eq!(
        single.matches("| test | 80 | NDCG@10 |").count(),
        2,
        "{pooled}"
    );
    let diff_of = |table: &str, prefix: &str, column: usize| -> String {
        let row = table.lines().find(|l| l.starts_with(prefix)).expect(table);
        row.split('|')
            .map(str::trim)
            .nth(column)
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        diff_of(over_seeds, "| test | 80 | 2 | NDCG@10 |", 7),
        diff_of(single, "| test | 80 | NDCG@10 |", 6),
        "{pooled}"
    );
    let other = dir.join("other.csv");
    std::fs::write(&other, format!("{RANKS_HEADER}\ntest,someone,3,i1,1,2,1\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dtrec"))
        .arg("compare")
        .args([&fixed, &halting, Path::new("--pair"), &other, &other])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "run 2: the validation split holds other samples than run 1's; every run must be \
             scored on the same data and split (run 2 is {} against {})",
            other.display(),
            other.display()
        )),
        "{stderr}"
    );

    let shorter = dir.join("shorter.csv");
    // the header and 80 + 80 samples: lines 1 ..= 161; drop the last
    let text = std::fs::read_to_string(&fixed).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    std::fs::write(&shorter, lines.join("\n") + "\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dtrec"))
        .arg("compare")
        .args([&halting, &shorter])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "{}:161: more samples than {}, which ends at line 160",
        halting.display(),
        shorter.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
