//! `moesim validate`: the validation suite against published runs and H100 measurements.

use super::fail;
use std::path::PathBuf;
use std::process::ExitCode;

/// `moesim validate`: run the suite, print the accuracy table; exit 1 if a case without
/// `known_miss` is out of tolerance.
pub fn validate(
    cases: Option<PathBuf>,
    h100_data: Option<PathBuf>,
    no_h100: bool,
    markdown: Option<PathBuf>,
) -> ExitCode {
    use moesim::validate as v;
    let cases = cases.unwrap_or_else(v::default_cases_dir);
    let h100 = h100_data.unwrap_or_else(v::default_h100_dir);
    let bars =
        super::progress::Bars::start("running the validation suite (published runs, H100 data)");
    let results = v::run_suite_with(&cases, (!no_h100).then_some(h100.as_path()), &bars);
    bars.clear();
    let results = match results {
        Ok(r) => r,
        Err(e @ v::ValidateError::Sim { .. }) => return fail(1, e),
        Err(e) => return fail(2, e),
    };
    let table = v::markdown_table(&results);
    outln!("{table}");
    let notes = v::failure_notes(&results);
    if !notes.is_empty() {
        outln!("Out of tolerance, and why:\n{notes}");
    }
    if let Some(p) = markdown {
        if let Err(e) = moesim::io::write_atomic(&p, format!("{table}\n{notes}").as_bytes()) {
            return fail(1, e);
        }
    }
    if v::passes(&results) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
