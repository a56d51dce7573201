//! The subcommand handlers of the `moesim` binary, one module per group; each returns the exit code.

pub mod hardware;
pub mod progress;
pub mod run;
pub mod samples;
pub mod step;
pub mod sweep;
pub mod trace;
pub mod validate;

use moesim::report;
use std::process::ExitCode;

/// Print `error: msg` to stderr and return exit code `code` (1 failed run, 2 bad input).
pub fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(code)
}

/// Exit code for a plotting error: 2 for bad input, 1 for a failure to write.
pub fn plot_fail(e: report::PlotError) -> ExitCode {
    fail(if e.is_bad_input() { 2 } else { 1 }, e)
}

/// Exit code 1 with "cannot write" when `--out` names an existing file: outputs go into a folder.
/// (A write that fails later is exit code 1 too, in every subcommand: the input was fine, the
/// command could not finish.)
pub fn out_is_not_a_folder(out: &std::path::Path) -> Option<ExitCode> {
    (out.exists() && !out.is_dir()).then(|| {
        fail(
            1,
            format!(
                "{}: cannot write outputs there: it is a file, not a folder (--out takes a folder)",
                out.display()
            ),
        )
    })
}
