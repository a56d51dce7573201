//! The grid a run sees: the scenario's [`GridSpec`] loaded, windowed to the run and priced, and PUE per interval.

use std::path::PathBuf;

use super::error::GridError;
use super::marginal::estimate_mef;
use super::opened;
use super::profile::{default_profile_series, profile_regions};
use super::pue::{pue_series, PueModel};
use super::series::{CiKind, CiSignal, GridSeries};
use super::spec::{GridFile, GridSource, GridSpec, MarginalSource};

/// The series of `spec` from `start_utc_s` for `horizon_s` seconds: the embedded profile, or the file
/// (its chosen intensity signal) windowed to the run, with the flat price where the series has none.
/// A file with load and/or price but no intensity (ENTSO-E load or price exports) takes intensity
/// from the embedded profile of `spec.region`; the series' notes say so. With `spec.marginal`, the
/// marginal series (estimated, a named signal of the file, or a second file) is the first entry of
/// `ci_alt`, windowed the same way ([`GridSeries::ci_of_kind`] finds it).
pub fn series_for(
    spec: &GridSpec,
    start_utc_s: i64,
    horizon_s: i64,
) -> Result<GridSeries, GridError> {
    let mut g = match &spec.source {
        GridSource::Profile => default_profile_series(
            &spec.region,
            start_utc_s,
            horizon_s,
            spec.interval_s,
            spec.price_per_mwh,
        )?,
        GridSource::File(file) => file_window(spec, file, start_utc_s, horizon_s)?,
    };
    if let Some(MarginalSource::File(mfile)) = &spec.marginal {
        let m = marginal_file(spec, mfile, &g)?;
        g.notes
            .push(format!("marginal intensity '{}' from {}", m.name, m.source));
        g.ci_alt.insert(0, m.signal);
        g.validate()?;
    }
    Ok(g)
}

/// The grid file of `spec` windowed to the run, with its estimated or named marginal signal.
fn file_window(
    spec: &GridSpec,
    file: &GridFile,
    start_utc_s: i64,
    horizon_s: i64,
) -> Result<GridSeries, GridError> {
    // Parsed once per process while the file stays the same (a sweep's points share it).
    let cols = opened::grid_columns(file, &spec.region)?;
    // The estimate reads the whole file's generation (every month × hour bin), before windowing.
    let mef = match &spec.marginal {
        Some(MarginalSource::Estimate { min_changes }) => Some(estimate_mef(
            &cols.source,
            cols.start_utc_s,
            cols.interval_s,
            cols.tz,
            &cols.generation,
            *min_changes,
        )?),
        _ => None,
    };
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
    let mut full = match &file.ci_signal {
        Some(name) => full.select_ci(name)?,
        None => full,
    };
    if let Some(m) = mef {
        full.notes.extend(m.notes.iter().cloned());
        full.ci_alt.insert(0, m.signal());
    }
    if let Some(MarginalSource::Signal(name)) = &spec.marginal {
        put_marginal_first(&mut full, name)?;
    }
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

/// Moves the signal called `name` to the front of `ci_alt` (it is the first marginal one then); an
/// error if the series has no such signal or it is an average one.
fn put_marginal_first(s: &mut GridSeries, name: &str) -> Result<(), GridError> {
    let marginal_names = || {
        let m: Vec<&str> = std::iter::once((&s.ci_name, s.ci_kind))
            .chain(s.ci_alt.iter().map(|a| (&a.name, a.kind)))
            .filter(|(_, k)| *k == CiKind::Marginal)
            .map(|(n, _)| n.as_str())
            .collect();
        if m.is_empty() {
            format!(
                "the file's signals ({}) are all average; estimate one (grid.marginal.source = \"estimate\") or give a marginal file (source = \"csv\")",
                s.ci_names().join(", ")
            )
        } else {
            format!("marginal signals of this file: {}", m.join(", "))
        }
    };
    if s.ci_name.eq_ignore_ascii_case(name.trim()) {
        return match s.ci_kind {
            CiKind::Marginal => Ok(()),
            CiKind::Average => Err(GridError::NotMarginal {
                source_name: s.source.clone(),
                name: name.to_string(),
                kind: "average",
                valid: marginal_names(),
            }),
        };
    }
    let Some(k) = s
        .ci_alt
        .iter()
        .position(|a| a.name.eq_ignore_ascii_case(name.trim()))
    else {
        return Err(GridError::UnknownSignal {
            source_name: s.source.clone(),
            name: name.to_string(),
            available: s.ci_names().join(", "),
        });
    };
    if s.ci_alt[k].kind != CiKind::Marginal {
        return Err(GridError::NotMarginal {
            source_name: s.source.clone(),
            name: name.to_string(),
            kind: "average",
            valid: marginal_names(),
        });
    }
    let m = s.ci_alt.remove(k);
    s.ci_alt.insert(0, m);
    Ok(())
}

/// What a second (marginal) file gave for the run's window.
struct MarginalFromFile {
    name: String,
    source: String,
    signal: CiSignal,
}

/// The marginal signal of `mfile` on the intervals of `g` (the run's window of the primary series).
fn marginal_file(
    spec: &GridSpec,
    mfile: &GridFile,
    g: &GridSeries,
) -> Result<MarginalFromFile, GridError> {
    let s = opened::grid_columns(mfile, &spec.region)?.into_series()?;
    let s = match &mfile.ci_signal {
        Some(name) => s.select_ci(name)?,
        None => s,
    };
    if s.ci_kind != CiKind::Marginal {
        let valid = if mfile.columns.is_some() {
            "a file given as grid.marginal.csv must hold marginal intensity: declare its column with ci_kind = \"marginal\"".to_string()
        } else {
            format!(
                "a file given as grid.marginal.csv must hold marginal intensity (e.g. a WattTime co2_moer export); its signals: {}",
                s.ci_names().join(", ")
            )
        };
        return Err(GridError::NotMarginal {
            source_name: s.source.clone(),
            name: s.ci_name.clone(),
            kind: "average",
            valid,
        });
    }
    let duration_s = g.interval_s * g.len() as i64;
    let w = s.window_resampled(g.start_utc_s, duration_s, g.interval_s, mfile.wrap_years)?;
    Ok(MarginalFromFile {
        name: w.ci_name.clone(),
        source: s.source.clone(),
        signal: CiSignal {
            name: w.ci_name,
            kind: CiKind::Marginal,
            g_per_kwh: w.ci_g_per_kwh,
        },
    })
}

/// PUE of each interval of `grid`: from outdoor temperature when `weather` gives an EPW file and its
/// cooling model, else the constant `pue`.
pub fn pue_by_interval(
    grid: &GridSeries,
    pue: f64,
    weather: Option<&(PathBuf, PueModel)>,
) -> Result<Vec<f64>, GridError> {
    Ok(match weather {
        Some((path, model)) => {
            let w = opened::weather(path)?;
            pue_series(grid, w.as_ref(), model)
        }
        None => vec![pue; grid.ci_g_per_kwh.len()],
    })
}
