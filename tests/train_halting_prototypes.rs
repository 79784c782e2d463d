//! The halting stage after training with the indicators over the finest
//! prototype level (`HaltingConfig::indicators = prototypes`): for DTRec
//! (its trained hierarchy) and ReaRec-ERL (K-means of its item table after
//! training), the sweep's predictions from full-depth traces in that space
//! equal what adaptive evaluation in that space measures, the compute is
//! counted over the k centroids, and a served model halts the same way.

use dtrec::data::batches_in_order;
use dtrec::data::{leave_one_out, synthetic::SyntheticConfig};
use dtrec::eval::evaluate_policy_in;
use dtrec::model::halting::fit::trace;
use dtrec::model::halting::indicators::{IndicatorBasis, IndicatorCentroids, IndicatorSpace};
use dtrec::model::{Family, HaltingPolicy, ModelConfig};
use dtrec::model::{HaltingConfig, HaltingRule};
use dtrec::serve::Recommender;
use dtrec::train::{train, TrainConfig};

#[test]
fn calibration_in_prototype_space_matches_adaptive_evaluation() {
    let synth = SyntheticConfig {
        num_users: 150,
        ..SyntheticConfig::default()
    }
    .generate()
    .unwrap();
    let data = &synth.interactions;
    let split = leave_one_out(data).unwrap();
    for family in [Family::Dtrec, Family::RearecErl] {
        let model = ModelConfig {
            d: 16,
            inner: 32,
            max_len: 12,
            ..ModelConfig::reasoning(data.num_items(), family, 3)
        };
        let config = TrainConfig {
            max_epochs: 3,
            threads: Some(2),
            eval_batch_size: 37,
            halting: HaltingConfig {
                tolerance: 0.05,
                indicators: IndicatorSpace::Prototypes,
                ..HaltingConfig::default()
            },
            ..TrainConfig::default()
        };
        let outcome = train(data, &split, model, &config, &mut |_| {}).unwrap();
        let h = outcome.halting.as_ref().unwrap();
        let protos = outcome.prototypes.as_ref().unwrap();
        // the basis is the finest prototype level of the returned hierarchy
        let levels = protos.levels();
        let finest = &levels[levels.len() - 2];
        let want = IndicatorCentroids::new(finest.centroids.clone(), finest.k, 16).unwrap();
        assert_eq!(h.indicators, IndicatorBasis::Prototypes(want));
        let k = finest.k as u64;
        assert!(k >= 2 && (k as usize) < data.num_items(), "k = {k}");

        let rule = |r: HaltingRule| h.rules.iter().find(|x| x.rule == r).unwrap();
        let cal = &h.calibration;
        let fixed = rule(HaltingRule::Fixed);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9;
        assert!(close(cal.full_depth_ndcg10, fixed.valid.ndcg(10).unwrap()));
        assert!(!fixed.test_compute.adaptive);
        let threshold = rule(HaltingRule::Threshold);
        let measured = threshold.valid.ndcg(10).unwrap();
        match cal.chosen {
            Some(i) => {
                let p = &cal.curve[i];
                assert!(
                    close(p.ndcg10, measured),
                    "{family:?}: {} vs {measured}",
                    p.ndcg10
                );
                assert!(close(p.avg_steps, threshold.valid_compute.avg_steps));
            }
            None => assert_eq!(threshold.policy, HaltingPolicy::Fixed),
        }
        // the learned gate always runs adaptively: counted over the k centroids
        let c = &rule(HaltingRule::Learned).valid_compute;
        assert!(c.adaptive);
        assert_eq!(c.indicator_space, IndicatorSpace::Prototypes);
        assert_eq!(c.indicator_outcomes, k);
        // one item scoring pass per user, whatever its halting step
        let n = data.num_items() as f64;
        assert!(close(c.scoring_flops, 2.0 * n * 16.0), "{c:?}");
        // the traces the sweep used are in the prototype space, not the items'
        let subset = &split.valid[..40];
        let batches = batches_in_order(data, subset, 16, outcome.model.config().max_len);
        let (in_protos, ranks) = trace(&outcome.model, &h.indicators, &batches);
        let (in_items, item_ranks) = trace(&outcome.model, &IndicatorBasis::Items, &batches);
        assert_eq!(ranks, item_ranks);
        assert_ne!(in_protos, in_items);

        // served: the same halting steps as the evaluation
        let vocab = data.item_ids()[1..].to_vec();
        let rec = Recommender::new(outcome.model.clone(), vocab)
            .unwrap()
            .with_halting(h.policy.clone())
            .with_prototypes(protos.clone())
            .unwrap()
            .with_indicators(IndicatorSpace::Prototypes)
            .unwrap();
        assert_eq!(rec.indicators(), &h.indicators);
        let served = evaluate_policy_in(
            rec.model(),
            data,
            &split.test,
            rec.halting(),
            rec.indicators(),
            64,
            false,
        )
        .unwrap();
        assert_eq!(served.report.metrics, outcome.test);
        assert_eq!(served.compute, outcome.test_compute);
    }
}
