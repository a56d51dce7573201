//! The multi-region comparison as a plot: per mode of sites.csv a bar of CO2e, the sites' part and the
//! WAN's part stacked, with its wall-clock time on top.

use super::draw::render;
use super::draw_stacked::{Layer, StackedBars};
use super::plots_data::PlotError;
use plotters::style::RGBColor;
use std::path::{Path, PathBuf};

/// One mode's bar: name, CO2e at the sites [kg], CO2e of the WAN [kg], wall-clock [h].
struct Bar {
    mode: String,
    sites_kg: f64,
    wan_kg: f64,
    wall_h: f64,
}

const SITES: RGBColor = RGBColor(70, 110, 180);
const WAN: RGBColor = RGBColor(220, 150, 40);

/// The chart of `bars`: sites' CO2e below, the WAN's on top, "kg, h" over each bar.
fn chart(bars: &[Bar]) -> StackedBars {
    StackedBars {
        caption: "Across regions: CO2e by mode (wall-clock on top)".into(),
        y_desc: "CO2e [kg]".into(),
        names: bars.iter().map(|b| b.mode.clone()).collect(),
        layers: vec![
            Layer {
                name: "sites",
                colour: SITES,
                values: bars.iter().map(|b| b.sites_kg).collect(),
            },
            Layer {
                name: "WAN transfers",
                colour: WAN,
                values: bars.iter().map(|b| b.wan_kg).collect(),
            },
        ],
        top_labels: bars
            .iter()
            .map(|b| format!("{:.0} kg, {:.1} h", b.sites_kg + b.wan_kg, b.wall_h))
            .collect(),
        side_margin_px: 24,
    }
}

/// The bars of `sites.csv`'s text: each row's mode, `co2_kg` − `wan_co2_kg`, `wan_co2_kg` and
/// `wall_clock_h`; a missing column or a number that does not parse names the file and line.
fn read_bars(path: &Path, text: &str) -> Result<Vec<Bar>, PlotError> {
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let bad = |line: u64, msg: String| PlotError::Parse {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let headers = rd.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(1, format!("no `{name}` column (sites.csv as moesim run writes it has mode, co2_kg, wan_co2_kg, wall_clock_h)")))
    };
    let (mode, co2, wan, wall) = (
        col("mode")?,
        col("co2_kg")?,
        col("wan_co2_kg")?,
        col("wall_clock_h")?,
    );
    let mut bars = Vec::new();
    for (i, rec) in rd.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| bad(line, e.to_string()))?;
        let num = |c: usize, name: &str| {
            rec.get(c)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(line, format!("`{name}` is not a finite number")))
        };
        let (total, wan_kg) = (num(co2, "co2_kg")?, num(wan, "wan_co2_kg")?);
        bars.push(Bar {
            mode: rec.get(mode).unwrap_or_default().to_string(),
            sites_kg: total - wan_kg,
            wan_kg,
            wall_h: num(wall, "wall_clock_h")?,
        });
    }
    Ok(bars)
}

/// Draw `sites_co2.png/.svg` into `dir` from its sites.csv (a multi-region run); returns the paths
/// written (none without a sites.csv).
pub(crate) fn plot_sites(dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let path = dir.join("sites.csv");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).map_err(|source| PlotError::Io {
        path: path.clone(),
        source,
    })?;
    let bars = read_bars(&path, &text)?;
    if bars.is_empty() {
        return Ok(Vec::new());
    }
    render(dir, "sites_co2", (960, 560), &chart(&bars))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "mode,sites_used,co2_kg,energy_facility_kwh,wan_energy_kwh,wan_co2_kg,wall_clock_h\nsingle:A,A 5 h,100.0,300,0,0.0,5.0\nfollow_the_night,A 2 h; B 3 h,90.0,310,20,8.5,6.0\n";

    #[test]
    fn bars_split_the_co2_into_sites_and_wan() {
        let b = read_bars(Path::new("sites.csv"), CSV).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].mode, "follow_the_night");
        assert_eq!((b[1].sites_kg, b[1].wan_kg, b[1].wall_h), (81.5, 8.5, 6.0));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sites.csv"), CSV).unwrap();
        let w = plot_sites(dir.path()).unwrap();
        assert_eq!(w.len(), 2);
        assert!(dir.path().join("sites_co2.png").is_file());
    }

    #[test]
    fn a_bad_sites_csv_names_the_line_and_the_column() {
        let e = read_bars(
            Path::new("sites.csv"),
            "mode,co2_kg,wan_co2_kg,wall_clock_h\nx,12,abc,1\n",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("sites.csv: line 2") && e.contains("wan_co2_kg"),
            "{e}"
        );
        let e = read_bars(Path::new("sites.csv"), "mode,co2_kg\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 1") && e.contains("wan_co2_kg"), "{e}");
        // No sites.csv: nothing drawn.
        let dir = tempfile::tempdir().unwrap();
        assert!(plot_sites(dir.path()).unwrap().is_empty());
    }
}
