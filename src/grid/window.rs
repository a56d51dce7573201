//! The grid a run sees: the scenario's [`GridSpec`] loaded, windowed to the run and priced, and PUE per interval.

use std::path::PathBuf;

use super::error::GridError;
use super::format::load_grid_file;
use super::profile::default_profile_series;
use super::pue::{pue_series, PueModel};
use super::series::GridSeries;
use super::spec::{GridSource, GridSpec};
use super::weather::load_epw;

/// The series of `spec` from `start_utc_s` for `horizon_s` seconds: the embedded profile, or the file
/// (its chosen intensity signal) windowed to the run, with the flat price where the series has none.
pub fn series_for(
    spec: &GridSpec,
    start_utc_s: i64,
    horizon_s: i64,
) -> Result<GridSeries, GridError> {
    let file = match &spec.source {
        GridSource::Profile => {
            return default_profile_series(
                &spec.region,
                start_utc_s,
                horizon_s,
                spec.interval_s,
                spec.price_per_mwh,
            )
        }
        GridSource::File(file) => file,
    };
    let (full, _report) = load_grid_file(file, &spec.region)?;
    let full = match &file.ci_signal {
        Some(name) => full.select_ci(name)?,
        None => full,
    };
    let mut g = full.window(start_utc_s, horizon_s, file.wrap_years)?;
    if g.price_per_mwh.is_none() {
        if let Some(p) = spec.price_per_mwh {
            g.price_per_mwh = Some(vec![p; g.ci_g_per_kwh.len()]);
        }
    }
    Ok(g)
}

/// PUE of each interval of `grid`: from outdoor temperature when `weather` gives an EPW file and its
/// cooling model, else the constant `pue`.
pub fn pue_by_interval(
    grid: &GridSeries,
    pue: f64,
    weather: Option<&(PathBuf, PueModel)>,
) -> Result<Vec<f64>, GridError> {
    Ok(match weather {
        Some((path, model)) => pue_series(grid, &load_epw(path)?, model),
        None => vec![pue; grid.ci_g_per_kwh.len()],
    })
}
