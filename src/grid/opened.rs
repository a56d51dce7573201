//! Grid and weather files parsed once per process: a sweep's points and a run's samples read the same
//! files, so each is parsed once and reused while its length and modification time stay the same.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::error::GridError;
use super::format::{load_grid_columns, GridColumns};
use super::spec::GridFile;
use super::weather::{load_epw, WeatherSeries};

/// A file's length [bytes] and modification time: a file that changed is parsed again.
type Stamp = (u64, SystemTime);

/// A parsed grid file: how it was read (the whole [`GridFile`] and the region), its stamp, the columns.
type OpenedGrid = (GridFile, String, Stamp, Arc<GridColumns>);

/// Grid files parsed so far, newest last (at most [`KEEP`]).
static GRIDS: Mutex<Vec<OpenedGrid>> = Mutex::new(Vec::new());
/// Weather files parsed so far, newest last (at most [`KEEP`]).
static WEATHER: Mutex<Vec<(PathBuf, Stamp, Arc<WeatherSeries>)>> = Mutex::new(Vec::new());
/// Files of each kind kept: a scenario reads at most a grid, a marginal file and a weather file
/// per site, and a year of hourly columns is a few hundred KiB.
const KEEP: usize = 8;

/// The stamp of `path`, `None` where the file system gives no modification time (then the file
/// is parsed every time: nothing tells whether it changed).
fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// Remember `v` under a key `same` finds, dropping the oldest past [`KEEP`].
fn remember<T>(list: &Mutex<Vec<T>>, same: impl Fn(&T) -> bool, v: T) {
    if let Ok(mut l) = list.lock() {
        l.retain(|o| !same(o));
        l.push(v);
        if l.len() > KEEP {
            l.remove(0);
        }
    }
}

/// [`load_grid_columns`] of `file` for `region`, parsed once while the file stays the same (a
/// copy of the parsed columns; an error is not remembered, so it is reported again).
pub(super) fn grid_columns(file: &GridFile, region: &str) -> Result<GridColumns, GridError> {
    let Some(st) = stamp(&file.path) else {
        return load_grid_columns(file, region);
    };
    let same = |o: &OpenedGrid| o.0 == *file && o.1 == region;
    let hit = GRIDS
        .lock()
        .ok()
        .and_then(|l| l.iter().find(|o| same(o) && o.2 == st).map(|o| o.3.clone()));
    if let Some(c) = hit {
        return Ok((*c).clone());
    }
    let c = load_grid_columns(file, region)?;
    remember(
        &GRIDS,
        same,
        (file.clone(), region.to_string(), st, Arc::new(c.clone())),
    );
    Ok(c)
}

/// [`load_epw`] of `path`, parsed once while the file stays the same.
pub(super) fn weather(path: &Path) -> Result<Arc<WeatherSeries>, GridError> {
    let Some(st) = stamp(path) else {
        return load_epw(path).map(Arc::new);
    };
    let hit = WEATHER.lock().ok().and_then(|l| {
        l.iter()
            .find(|o| o.0 == path && o.1 == st)
            .map(|o| o.2.clone())
    });
    if let Some(w) = hit {
        return Ok(w);
    }
    let w = Arc::new(load_epw(path)?);
    remember(
        &WEATHER,
        |o: &(PathBuf, Stamp, Arc<WeatherSeries>)| o.0 == path,
        (path.to_path_buf(), st, w.clone()),
    );
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{CsvColumns, GridFile};

    fn generic(path: &Path) -> GridFile {
        GridFile::generic(
            path,
            CsvColumns {
                time_column: "time".into(),
                ci_column: "ci".into(),
                ..CsvColumns::default()
            },
        )
    }

    #[test]
    fn a_grid_file_is_parsed_once_and_again_when_it_changes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("grid.csv");
        std::fs::write(
            &path,
            "time,ci\n2022-01-01 00:00,300\n2022-01-01 01:00,310\n",
        )
        .expect("write");
        let f = generic(&path);
        let a = grid_columns(&f, "X").expect("first read");
        let b = grid_columns(&f, "X").expect("second read");
        assert_eq!(a.ci[0].g_per_kwh, vec![300.0, 310.0]);
        assert_eq!(b.ci[0].g_per_kwh, a.ci[0].g_per_kwh);
        // Remembered: the same length and modification time read the kept copy, not the file.
        let mtime = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        std::fs::write(
            &path,
            "time,ci\n2022-01-01 00:00,301\n2022-01-01 01:00,311\n",
        )
        .expect("rewrite, same length");
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_modified(mtime).expect("set the old mtime");
        drop(file);
        let kept = grid_columns(&f, "X").expect("kept read");
        assert_eq!(kept.ci[0].g_per_kwh, vec![300.0, 310.0]);
        // A changed file (another length) is parsed again.
        std::fs::write(
            &path,
            "time,ci\n2022-01-01 00:00,400\n2022-01-01 01:00,410\n2022-01-01 02:00,420\n",
        )
        .expect("rewrite");
        let c = grid_columns(&f, "X").expect("third read");
        assert_eq!(c.ci[0].g_per_kwh, vec![400.0, 410.0, 420.0]);
        // A bad file's error is reported every time, not remembered.
        std::fs::write(&path, "time,ci\n2022-01-01 00:00,abc\n").expect("rewrite");
        for _ in 0..2 {
            let e = grid_columns(&f, "X").expect_err("a bad value").to_string();
            assert!(e.contains("grid.csv") && e.contains("abc"), "{e}");
        }
    }
}
