//! Which reasoning state ranks best? For a saved model and the data it was
//! trained on, scores every leave-one-out validation and test sample from
//! each state h₀ … h_T alone and from their mean (full depth, no dropout,
//! history items not masked) and prints NDCG@10 and HR@10 of each readout.
//!
//! A DTRec or ReaRec-PRL model predicts from h_T, a ReaRec-ERL model from
//! the mean; the other rows show what a model would score had it been read
//! out otherwise without being trained for it (RESULTS.md, "where DTRec and
//! ReaRec-ERL differ").
//!
//! ```text
//! cargo run --release --example state_readouts -- MODEL.safetensors ../shared/datasets/s3rec/Beauty.txt
//! ```

use std::path::Path;
use std::process::ExitCode;

use dtrec::data::Interactions;
use dtrec::data::{leave_one_out, load, Format, ReadOptions, Sample};
use dtrec::eval::{target_rank, MetricsAccumulator, RankError};
use dtrec::model::Model;
use dtrec::serve::Recommender;
use dtrec::SeqBatch;

/// Histories scored per pass (bounds the (rows × N) score buffer).
const ROWS_PER_PASS: usize = 512;

/// A readout: a name and the weight of each state h₀ … h_T in the scored state.
struct Readout {
    name: String,
    weights: Vec<f32>,
}

/// h₀ … h_T one at a time, then their mean.
fn readouts(states: usize) -> Vec<Readout> {
    let mut out: Vec<Readout> = (0..states)
        .map(|t| Readout {
            name: format!("h{t}"),
            weights: (0..states)
                .map(|k| if k == t { 1.0 } else { 0.0 })
                .collect(),
        })
        .collect();
    if states > 1 {
        out.push(Readout {
            name: format!("mean(h0 … h{})", states - 1),
            weights: vec![1.0 / states as f32; states],
        });
    }
    out
}

/// One accumulator (cutoffs 10 and 20) per readout over `samples`.
fn score_readouts(
    model: &Model,
    data: &Interactions,
    samples: &[Sample],
    readouts: &[Readout],
) -> Result<Vec<MetricsAccumulator>, RankError> {
    let cfg = model.config();
    let (d, n, states) = (cfg.d, cfg.n_items, cfg.t_max + 1);
    let mut accs: Vec<MetricsAccumulator> = readouts
        .iter()
        .map(|_| MetricsAccumulator::new(&[10, 20]).expect("valid cutoffs"))
        .collect();
    let mut scratch = Vec::new();
    for chunk in samples.chunks(ROWS_PER_PASS) {
        let histories: Vec<&[u32]> = chunk.iter().map(|s| s.history(data)).collect();
        let seqs = SeqBatch::from_histories(&histories, cfg.max_len, n)
            .expect("histories of the model's own item table");
        // (rows, T+1, d)
        let all_states = model.encode_steps(&seqs);
        let rows = chunk.len();
        let mut hidden = vec![0.0f32; rows * d];
        let mut scores = vec![0.0f32; rows * n];
        for (readout, acc) in readouts.iter().zip(&mut accs) {
            hidden.fill(0.0);
            for (r, h) in hidden.chunks_exact_mut(d).enumerate() {
                for (t, &w) in readout.weights.iter().enumerate() {
                    let state = &all_states[(r * states + t) * d..(r * states + t + 1) * d];
                    for (x, &s) in h.iter_mut().zip(state) {
                        *x += w * s;
                    }
                }
            }
            model.score_items(&mut scores, &hidden);
            for (row, sample) in scores.chunks_exact(n).zip(chunk) {
                let rank = target_rank(row, sample.target(data), &[], &mut scratch)?;
                acc.add_rank(rank, false);
            }
        }
    }
    Ok(accs)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_path, data_path] = args.as_slice() else {
        eprintln!("usage: state_readouts MODEL.safetensors DATA");
        return ExitCode::FAILURE;
    };
    let rec = match Recommender::load(model_path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let data_path = Path::new(data_path);
    let data = match load(
        data_path,
        &Format::from_path(data_path),
        &ReadOptions::default(),
    ) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if data.item_ids()[1..] != *rec.vocab() {
        eprintln!(
            "error: {}: the item vocabulary differs from the model's: use the data it was trained on",
            data_path.display()
        );
        return ExitCode::FAILURE;
    }
    let split = leave_one_out(&data).expect("leave-one-out on a loaded store");
    let model = rec.model();
    let readouts = readouts(model.config().t_max + 1);
    println!(
        "{} model, T_max {}: NDCG@10 / HR@10 by readout",
        model.config().family,
        model.config().t_max
    );
    println!(
        "{:<16} {:>10} {:>8} {:>10} {:>8}",
        "readout", "valid N@10", "HR@10", "test N@10", "HR@10"
    );
    let mut by_split = Vec::new();
    for samples in [&split.valid, &split.test] {
        match score_readouts(model, &data, samples, &readouts) {
            Ok(accs) => by_split.push(accs),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    for (i, readout) in readouts.iter().enumerate() {
        let [valid, test] = [&by_split[0][i], &by_split[1][i]].map(MetricsAccumulator::finish);
        println!(
            "{:<16} {:>10.4} {:>8.4} {:>10.4} {:>8.4}",
            readout.name,
            valid.ndcg(10).unwrap_or(f64::NAN),
            valid.hr(10).unwrap_or(f64::NAN),
            test.ndcg(10).unwrap_or(f64::NAN),
            test.hr(10).unwrap_or(f64::NAN)
        );
    }
    ExitCode::SUCCESS
}
