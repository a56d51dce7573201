//! `moesim run --samples N`: the Monte Carlo of a scenario, its bar on stderr and its files.

use super::fail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use moesim::uncertainty::{self, Sampled};
use moesim::Scenario;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Run the samples `--samples` (or the scenario's `[uncertainty]` table) asks for and write their
/// files into `dir`; `Ok(None)` when neither asks for any.
pub fn run(
    s: &Scenario,
    samples: Option<u32>,
    dir: &Path,
) -> Result<Option<(Sampled, Vec<PathBuf>)>, ExitCode> {
    let spec = match (&s.uncertainty, samples) {
        (None, None) => return Ok(None),
        (Some(u), n) => moesim::scenario::UncertaintySpec {
            samples: n.unwrap_or(u.samples),
            ..u.clone()
        },
        (None, Some(n)) => moesim::scenario::UncertaintySpec {
            samples: n,
            ..Default::default()
        },
    };
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(spec.samples as u64), target);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} {bar:30} {pos}/{len} samples  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix("uncertainty");
    let res = uncertainty::run_samples(s, &spec, spec.samples, &|| bar.inc(1));
    bar.finish_and_clear();
    let sampled = match res {
        Ok(x) => x,
        Err(e) if e.is_input_error() => return Err(fail(2, e)),
        Err(e) => return Err(fail(1, e)),
    };
    match uncertainty::write_files(&sampled, dir) {
        Ok(w) => Ok(Some((sampled, w))),
        Err(e) => Err(fail(1, e)),
    }
}
