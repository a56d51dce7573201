//! Progress bars on stderr for `run` and `validate`: a spinner from the start, one bar per task once the
//! simulation reports progress; nothing at all when stderr is not a terminal (piped, redirected, CI).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use moesim::progress::{Progress, ProgressSink};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bar positions are per-mille of a task's work.
const SCALE: u64 = 1000;

/// The bars of one command: a spinner saying what runs (with elapsed time), and a bar per task
/// (simulated time, steps/s, ETA) as soon as updates arrive.
pub struct Bars {
    multi: MultiProgress,
    spinner: ProgressBar,
    tasks: Mutex<Vec<Option<ProgressBar>>>,
    started: Instant,
}

impl Bars {
    /// Start the spinner with `what` (e.g. "simulating seed_comparison"); hidden unless stderr is a
    /// terminal.
    pub fn start(what: &str) -> Bars {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let spinner = multi.add(ProgressBar::new_spinner());
        spinner.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.set_message(what.to_string());
        spinner.enable_steady_tick(Duration::from_millis(200));
        Bars {
            multi,
            spinner,
            tasks: Mutex::new(Vec::new()),
            started: Instant::now(),
        }
    }

    /// Whether anything is drawn (stderr is a terminal).
    #[cfg(test)]
    pub fn visible(&self) -> bool {
        !self.multi.is_hidden()
    }

    /// Remove every bar (before the command prints its results).
    pub fn clear(&self) {
        self.spinner.finish_and_clear();
        if let Ok(tasks) = self.tasks.lock() {
            for b in tasks.iter().flatten() {
                b.finish_and_clear();
            }
        }
        let _ = self.multi.clear();
    }

    fn bar(&self, task: usize, name: &str) -> Option<ProgressBar> {
        let mut tasks = self.tasks.lock().ok()?;
        if tasks.len() <= task {
            tasks.resize(task + 1, None);
        }
        let b = tasks[task].get_or_insert_with(|| {
            let b = self.multi.add(ProgressBar::new(SCALE));
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} {bar:30} {percent:>3}%  {msg}  ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_prefix(name.to_string());
            b
        });
        Some(b.clone())
    }
}

/// The text beside a task's bar: simulated time so far and the step rate.
pub fn bar_message(simulated_s: f64, steps: u64, elapsed_s: f64) -> String {
    let sim = if simulated_s >= 2.0 * 86_400.0 {
        format!("{:.1} d", simulated_s / 86_400.0)
    } else {
        format!("{:.1} h", simulated_s / 3600.0)
    };
    let rate = if elapsed_s > 0.0 {
        steps as f64 / elapsed_s
    } else {
        0.0
    };
    format!("{sim} simulated, {rate:.0} steps/s")
}

impl ProgressSink for Bars {
    fn update(&self, p: &Progress<'_>) {
        let Some(b) = self.bar(p.task, p.name) else {
            return;
        };
        let done = if p.done.is_finite() {
            p.done.clamp(0.0, 1.0)
        } else {
            0.0
        };
        b.set_position((done * SCALE as f64).round() as u64);
        b.set_message(bar_message(
            p.simulated_s,
            p.steps,
            self.started.elapsed().as_secs_f64(),
        ));
    }

    fn finish(&self, task: usize) {
        if let Some(Some(b)) = self.tasks.lock().ok().and_then(|t| t.get(task).cloned()) {
            b.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_gives_simulated_time_and_step_rate() {
        assert_eq!(bar_message(7200.0, 100, 2.0), "2.0 h simulated, 50 steps/s");
        assert_eq!(
            bar_message(3.0 * 86_400.0, 0, 0.0),
            "3.0 d simulated, 0 steps/s"
        );
    }

    // Under `cargo test` stderr is captured, not a terminal: the bars draw nothing but take updates.
    #[test]
    fn bars_are_hidden_off_a_terminal_and_take_updates() {
        let b = Bars::start("simulating x");
        if !std::io::stderr().is_terminal() {
            assert!(!b.visible());
        }
        b.update(&Progress {
            task: 2,
            tasks: 3,
            name: "circadian",
            done: 0.5,
            simulated_s: 3600.0,
            steps: 10,
        });
        let pos = b.tasks.lock().unwrap()[2].as_ref().map(|x| x.position());
        assert_eq!(pos, Some(500));
        b.finish(2);
        b.clear();
    }
}
