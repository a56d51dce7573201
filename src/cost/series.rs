//! A value series of the cost table (a price, a carbon-intensity forecast) on the run's grid intervals, read by the grid's table reader.

use super::{CostError, ValueCsv};
use crate::grid::{
    load_table, parse_time_zone, ColumnReq, GridSeries, Quantity, StampStyle, TableSpec,
};

/// The values of `file` on the intervals of `grid` (time-weighted means of the file's intervals each
/// grid interval overlaps, as the grid's own window does; `wrap_years` as for a grid file). `quantity`
/// sets the plausible range the loader checks every cell against; `what` names the series in errors.
pub fn on_grid(
    file: &ValueCsv,
    quantity: Quantity,
    grid: &GridSeries,
    what: &'static str,
) -> Result<Vec<f64>, CostError> {
    let err = |e| match e {
        // The grid's hint (`grid.csv.allow_out_of_range`) does not apply to a cost series.
        crate::grid::GridError::OutOfRange {
            path,
            line,
            column,
            value,
            converted,
            quantity,
            ..
        } => {
            let b = quantity.bounds();
            CostError::SeriesOutOfRange {
                what,
                detail: format!(
                    "{}:{line}: column '{column}': value '{value}' ({converted} {}) is outside the plausible range {} ..= {} {}: {}",
                    path.display(),
                    b.unit,
                    b.lo,
                    b.hi,
                    b.unit,
                    b.why
                ),
            }
        }
        e => CostError::Series {
            what,
            source: Box::new(e),
        },
    };
    let context = file.path.display().to_string();
    let tz = parse_time_zone(&file.time_zone, &context).map_err(err)?;
    let table = load_table(&TableSpec {
        path: file.path.clone(),
        time_column: file.time_column.clone(),
        stamp_style: StampStyle::Iso,
        time_zone: file.time_zone.clone(),
        stamp_is_interval_end: file.stamp.is_end(),
        columns: vec![ColumnReq::required(&file.value_column, quantity)],
        max_gap_intervals: file.max_gap_intervals,
        thousands_separator: false,
        row_filter: None,
        skip_blank_nonexistent: false,
        allow_out_of_range: false,
    })
    .map_err(err)?;
    let values = table
        .columns
        .into_iter()
        .next()
        .flatten()
        .unwrap_or_default();
    // The values ride in the price slot of a series (intensity zero) so the grid's window does the
    // resampling, wrapping and coverage errors exactly as it does for the grid itself.
    let s = GridSeries {
        region: grid.region.clone(),
        tz,
        start_utc_s: table.start_utc_s,
        interval_s: table.interval_s,
        ci_g_per_kwh: vec![0.0; values.len()],
        ci_kind: grid.ci_kind,
        ci_name: file.value_column.clone(),
        ci_alt: Vec::new(),
        load_mw: None,
        price_per_mwh: Some(values),
        source: context,
        notes: Vec::new(),
    };
    let duration_s = grid.interval_s * grid.len() as i64;
    let w = s
        .window_resampled(
            grid.start_utc_s,
            duration_s,
            grid.interval_s,
            file.wrap_years,
        )
        .map_err(err)?;
    Ok(w.price_per_mwh.unwrap_or_default())
}
