//! Printing what the halting stage of a reasoning run found.

use dtrec::model::halting::indicators::IndicatorBasis;
use dtrec::train::{HaltingOutcome, TrainOutcome};

/// Prints the calibration curve, the gate and every rule's results.
pub fn print_halting(outcome: &TrainOutcome) {
    let Some(h) = &outcome.halting else {
        return;
    };
    match &h.indicators {
        IndicatorBasis::Items => println!("halting indicators over all items"),
        IndicatorBasis::Prototypes(c) => println!(
            "halting indicators over the {} prototypes of the finest prototype level",
            c.k()
        ),
    }
    print!("{}", h.calibration);
    println!(
        "learned gate: w = [{:.4}, {:.4}, {:.4}] (entropy, JS, delta), b = {:.4}; λ·BCE {:.5}",
        h.gate.w[0], h.gate.w[1], h.gate.w[2], h.gate.b, h.gate_loss
    );
    println!(
        "{:<10} {:>11} {:>10} {:>10} {:>10} {:>11} {:>9}",
        "halting", "valid N@10", "test N@10", "test H@10", "avg steps", "reasoning%", "total%"
    );
    for r in &h.rules {
        let c = &r.test_compute;
        println!(
            "{:<10} {:>11.4} {:>10.4} {:>10.4} {:>10.3} {:>11.1} {:>9.1}",
            r.rule.name(),
            r.valid.ndcg(10).unwrap_or(f64::NAN),
            r.test.ndcg(10).unwrap_or(f64::NAN),
            r.test.hr(10).unwrap_or(f64::NAN),
            c.avg_steps,
            100.0 * c.relative_reasoning(),
            100.0 * c.relative_total()
        );
    }
}

/// The halting stage as JSON (for `--report`).
pub fn halting_json(h: &HaltingOutcome) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = h
        .rules
        .iter()
        .map(|r| {
            serde_json::json!({
                "rule": r.rule,
                "policy": dtrec::io::StoredHalting::from_policy(&r.policy),
                "valid": r.valid,
                "valid_compute": r.valid_compute,
                "test": r.test,
                "test_compute": r.test_compute,
            })
        })
        .collect();
    let curve: Vec<serde_json::Value> = h
        .calibration
        .pareto_front()
        .into_iter()
        .map(|i| {
            let p = &h.calibration.curve[i];
            serde_json::json!({
                "policy": dtrec::io::StoredHalting::from_policy(
                    &dtrec::model::HaltingPolicy::Threshold(p.rule)
                ),
                "valid_ndcg10": p.ndcg10,
                "avg_steps": p.avg_steps,
            })
        })
        .collect();
    serde_json::json!({
        "indicators": h.indicators.space(),
        "indicator_outcomes": match &h.indicators {
            IndicatorBasis::Items => None,
            IndicatorBasis::Prototypes(c) => Some(c.k()),
        },
        "full_depth_valid_ndcg10": h.calibration.full_depth_ndcg10,
        "tolerance": h.calibration.tolerance,
        "pareto_curve": curve,
        "gate": { "w": h.gate.w, "b": h.gate.b, "loss": h.gate_loss },
        "rules": rules,
    })
}
