//! Progress display of a training run: a bar per epoch and a summary line.

use dtrec::train::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// Renders [`Progress`] events on standard error.
#[derive(Default)]
pub struct EpochBars {
    bar: Option<ProgressBar>,
}

impl EpochBars {
    pub fn handle(&mut self, event: Progress) {
        match event {
            Progress::EpochStart { epoch, batches } => {
                let bar = ProgressBar::new(batches as u64);
                bar.set_style(
                    ProgressStyle::with_template(
                        "epoch {prefix:>3} [{bar:30}] {pos}/{len} batches {per_sec} {msg}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(epoch.to_string());
                self.bar = Some(bar);
            }
            Progress::Step { step, loss, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(step as u64);
                    if step % 16 == 0 {
                        bar.set_message(format!("loss {loss:.4}"));
                    }
                }
            }
            Progress::EpochEnd(log) => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                let valid = log.valid.as_ref().map_or_else(String::new, |m| {
                    format!(
                        "  valid NDCG@10 {:.4} HR@10 {:.4}{}",
                        m.ndcg(10).unwrap_or(f64::NAN),
                        m.hr(10).unwrap_or(f64::NAN),
                        if log.improved { "  *best*" } else { "" }
                    )
                });
                eprintln!(
                    "epoch {:>3}  loss {:.4}  {:.1}s  {:.0} seq/s{valid}",
                    log.epoch, log.train_loss, log.train_seconds, log.sequences_per_second
                );
            }
        }
    }
}
