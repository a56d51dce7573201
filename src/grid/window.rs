//! The grid a run sees: the scenario's [`GridSpec`] loaded, windowed to the run and priced, and PUE per interval.

use std::path::PathBuf;

use super::error::GridError;
use super::format::load_grid_columns;
use super::profile::{default_profile_series, profile_regions};
use super::pue::{pue_series, PueModel};
use super::series::GridSeries;
use super::spec::{GridSource, GridSpec};
use super::weather::load_epw;

/// The series of `spec` from `start_utc_s` for `horizon_s` seconds: the embedded profile, or the file
/// (its chosen intensity signal) windowed to the run, with the flat price where the series has none.
/// A file with load and/or price but no intensity (ENTSO-E load or price exports) takes intensity
/// from the embedded profile of `spec.region`; the series' notes say so.
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
    let cols = load_grid_columns(file, &spec.region)?;
    let full = if cols.ci.is_empty() {
        if !profile_regions().contains(&spec.region.as_str()) {
            return Err(GridError::NoIntensityForRegion {
                source_name: cols.source,
                region: spec.region.clone(),
                available: profile_regions().join(", "),
            });
        }
        let span_s = cols.interval_s * cols.len() as i64;
        let ci = default_profile_series(
            &spec.region,
            cols.start_utc_s,
            span_s,
            cols.interval_s,
            None,
        )?;
        cols.into_series_with_ci(&ci)?
    } else {
        cols.into_series()?
    };
    let full = match &file.ci_signal {
        Some(name) => full.select_ci(name)?,
        None => full,
    };
    let mut g = full.window(start_utc_s, horizon_s, file.wrap_years)?;
    match (&g.price_per_mwh, spec.price_per_mwh) {
        (None, Some(p)) => {
            g.price_per_mwh = Some(vec![p; g.ci_g_per_kwh.len()]);
            g.notes
                .push(format!("flat price {p} per MWh (grid.price_per_mwh)"));
        }
        (Some(_), Some(_)) => g
            .notes
            .push("price from the grid file; grid.price_per_mwh not used".into()),
        _ => {}
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
