//! Adaptive Reasoning Halting adapts to user complexity: on the built-in
//! synthetic data (half the users follow one interest, half interleave
//! 2–4), a DTRec model is trained, its halting thresholds are calibrated on
//! validation, and the test users' average number of reasoning steps is
//! printed per user kind, for both halting rules.
//!
//! ```text
//! cargo run --release --example adaptive_steps            # 8 epochs, T_max = 3
//! cargo run --release --example adaptive_steps -- 12 4    # epochs, T_max
//! ```

use dtrec::data::leave_one_out;
use dtrec::data::synthetic::{SyntheticConfig, UserKind};
use dtrec::eval::evaluate_policy;
use dtrec::model::{Family, ModelConfig};
use dtrec::train::{train, Progress, TrainConfig};

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let epochs = args.next().and_then(Result::ok).unwrap_or(8);
    let t_max = args.next().and_then(Result::ok).unwrap_or(3);
    let synth = SyntheticConfig::default()
        .generate()
        .expect("default synthetic data");
    let data = &synth.interactions;
    let split = leave_one_out(data).expect("synthetic users have ≥ 3 events");
    let model = ModelConfig::reasoning(data.num_items(), Family::Dtrec, t_max);
    let config = TrainConfig {
        max_epochs: epochs,
        patience: 3,
        threads: Some(2),
        ..TrainConfig::default()
    };
    println!(
        "training DTRec (T_max = {t_max}, HPS {}) for up to {epochs} epochs on {} users",
        config.hps.variant.name(),
        data.num_users()
    );
    let outcome = train(data, &split, model, &config, &mut |p| {
        if let Progress::EpochEnd(log) = p {
            println!(
                "  epoch {:>2}: loss {:.4}, valid NDCG@10 {:.4}",
                log.epoch,
                log.train_loss,
                log.valid
                    .as_ref()
                    .and_then(|m| m.ndcg(10))
                    .unwrap_or(f64::NAN)
            );
        }
    })
    .expect("training runs");
    let halting = outcome.halting.expect("a reasoning model is calibrated");
    print!("{}", halting.calibration);
    println!(
        "\n{:<10} {:>10} {:>14} {:>15} {:>11}",
        "halting", "test N@10", "simple: steps", "complex: steps", "difference"
    );
    for rule in &halting.rules {
        let report = evaluate_policy(
            &outcome.model,
            data,
            &split.test,
            &rule.policy,
            config.eval_batch_size,
            false,
        )
        .expect("evaluation runs");
        let mean_steps = |kind: UserKind| {
            let steps: Vec<f64> = split
                .test
                .iter()
                .zip(&report.steps)
                .filter(|(s, _)| synth.user_kind[s.user as usize] == kind)
                .map(|(_, &t)| f64::from(t))
                .collect();
            steps.iter().sum::<f64>() / steps.len().max(1) as f64
        };
        let (simple, complex) = (mean_steps(UserKind::Simple), mean_steps(UserKind::Complex));
        println!(
            "{:<10} {:>10.4} {:>14.3} {:>15.3} {:>+11.3}",
            rule.rule.name(),
            report.report.metrics.ndcg(10).unwrap_or(f64::NAN),
            simple,
            complex,
            complex - simple
        );
    }
}
