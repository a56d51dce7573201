//! Results out: the summary rows, console table, CSV files and JSON, written atomically; plots and the HTML report.

mod carbon;
mod draw;
mod draw_stacked;
mod files;
mod folder;
mod html;
mod html_columns;
mod html_uncertainty;
mod layers;
mod plots;
mod plots_bands;
mod plots_cost;
mod plots_data;
mod plots_routing;
mod plots_saving;
mod plots_schedule;
mod plots_sites;
mod plots_skew;
mod plots_sweep;
mod plots_timeline;
mod plots_waveform;
mod savings;
mod sites;
mod summary;
mod table;
mod waveform;

pub use carbon::{co2_of_kind, co2_under};
pub use files::{write_outputs, OutputError};
pub use folder::{plot_dir, plot_sweep_dir, plot_trace_file, PlotOptions};
pub use html::{escape, write_report};
pub use layers::{plot_run_skew, run_layers_csv};
pub use plots_bands::{read_bands, BandsIn, FigureBand, TimelineBand};
pub use plots_data::{
    read_run_info, read_summary, read_sweep, read_timeline, write_run_files, PlotError, RunInfo,
    SweepIn, SweepRow, TimelineIn,
};
pub use plots_routing::plot_trace;
pub use plots_skew::{plot_skew_heatmap, SkewCell};
pub use plots_sweep::plot_sweep;
pub use savings::savings_text;
pub use sites::{site_columns, sites_csv, sites_json, sites_table, SITES_COLUMNS};
pub use summary::{summary_columns, summary_rows, to_json, SummaryRow};
pub use table::table;
pub use waveform::{
    strategy_waveforms, waveform_csv, write_waveform, WaveformOutError, MAX_WAVEFORM_ROWS,
};
