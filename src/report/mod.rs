//! Results out: the summary rows, console table, CSV files and JSON, written atomically.

mod files;
mod summary;

pub use files::{write_atomic, write_outputs, OutputError};
pub use summary::{summary_rows, table, to_json, SummaryRow};
