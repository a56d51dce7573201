//! The `[sweep]` table: options and parameters read from the scenario file, expanded into points (grid, zip or Latin hypercube).

use super::SweepError;
use crate::scenario::{line_col, Location};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How the parameter lists are combined into points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every combination (cartesian product); the first parameter varies slowest.
    Grid,
    /// The i-th value of every list together; all lists have the same length.
    Zip,
    /// `samples` points of a seeded Latin hypercube over the parameters.
    Lhs,
}

impl Mode {
    /// Every mode with its name in `[sweep] mode`.
    pub const ALL: [(Mode, &'static str); 3] =
        [(Mode::Grid, "grid"), (Mode::Zip, "zip"), (Mode::Lhs, "lhs")];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(m, _)| *m == self)
            .map_or("?", |(_, n)| n)
    }
}

/// Which random seed each point runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedMode {
    /// Each point gets its own seed derived from the scenario seed and the point index.
    PerPoint,
    /// Every point runs with the scenario seed (common random numbers across points).
    Shared,
}

/// The values one parameter takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// An explicit list (or a stepped range expanded to a list).
    List(Vec<toml::Value>),
    /// A continuous interval `[from, to]` (only with `mode = "lhs"`); integer ends give integer samples.
    Interval {
        /// Lower end.
        from: f64,
        /// Upper end.
        to: f64,
        /// Whether both ends were integers (samples are then rounded to integers).
        integer: bool,
    },
}

/// One swept parameter: a dotted path into the scenario file and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Dotted key path, e.g. `models.moe.experts`.
    pub path: String,
    /// Values it takes.
    pub values: Values,
    /// Where it is written in the scenario file.
    pub at: Location,
}

/// The parsed `[sweep]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    /// How parameters combine.
    pub mode: Mode,
    /// Points to draw with `lhs`.
    pub samples: Option<usize>,
    /// Seed of the Latin hypercube (default: the scenario seed).
    pub lhs_seed: u64,
    /// Seed of each point's simulation.
    pub seeds: SeedMode,
    /// Parameters in file order.
    pub params: Vec<Param>,
}

/// One point of a sweep: its index and the value of every swept parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Index in the full sweep (0-based); identifies the point across shards and resumes.
    pub index: usize,
    /// `(path, value)` in parameter order.
    pub assignments: Vec<(String, toml::Value)>,
}

impl Point {
    /// `path = value, ...` for messages.
    pub fn describe(&self) -> String {
        self.assignments
            .iter()
            .map(|(p, v)| format!("{p} = {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Keys allowed directly in `[sweep]`.
const OPTION_KEYS: [&str; 5] = ["mode", "samples", "seed", "seeds", "params"];

/// Largest number of points a sweep may expand to (guards against a typo in a step).
pub const MAX_POINTS: usize = 10_000_000;

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn loc(&self, span: Option<std::ops::Range<usize>>, key: &str) -> Location {
        let (line, col) = span.map(|s| line_col(self.text, s.start)).unwrap_or((0, 0));
        Location {
            file: self.file.to_string(),
            line,
            col,
            key: key.to_string(),
        }
    }

    fn err(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: &str,
        msg: impl Into<String>,
    ) -> SweepError {
        SweepError::Spec {
            at: self.loc(span, key),
            msg: msg.into(),
        }
    }
}

fn to_toml(v: &toml_edit::Value) -> Option<toml::Value> {
    use toml_edit::Value as E;
    Some(match v {
        E::String(s) => toml::Value::String(s.value().clone()),
        E::Integer(i) => toml::Value::Integer(*i.value()),
        E::Float(f) => toml::Value::Float(*f.value()),
        E::Boolean(b) => toml::Value::Boolean(*b.value()),
        E::Datetime(d) => toml::Value::Datetime(*d.value()),
        E::Array(a) => toml::Value::Array(a.iter().map(to_toml).collect::<Option<Vec<_>>>()?),
        E::InlineTable(t) => toml::Value::Table(
            t.iter()
                .map(|(k, v)| to_toml(v).map(|v| (k.to_string(), v)))
                .collect::<Option<toml::Table>>()?,
        ),
    })
}

fn item_span(item: &toml_edit::Item) -> Option<std::ops::Range<usize>> {
    match item {
        toml_edit::Item::Value(v) => v.span(),
        toml_edit::Item::Table(t) => t.span(),
        _ => None,
    }
}

fn as_f64(v: &toml_edit::Value) -> Option<f64> {
    match v {
        toml_edit::Value::Integer(i) => Some(*i.value() as f64),
        toml_edit::Value::Float(f) => Some(*f.value()),
        _ => None,
    }
}

/// A `{from, to, step}` table, expanded; `{from, to}` is an interval (lhs only).
fn range(
    ctx: &Ctx,
    path: &str,
    t: &dyn toml_edit::TableLike,
    span: Option<std::ops::Range<usize>>,
) -> Result<Values, SweepError> {
    for (k, _) in t.iter() {
        if !["from", "to", "step"].contains(&k) {
            return Err(ctx.err(
                span,
                path,
                format!("unknown range key `{k}`; a range is {{ from = A, to = B, step = S }} (or {{ from, to }} with mode = \"lhs\")"),
            ));
        }
    }
    let get = |k: &str| -> Result<Option<(f64, bool)>, SweepError> {
        match t.get(k) {
            None => Ok(None),
            Some(toml_edit::Item::Value(v)) => match as_f64(v) {
                Some(x) if x.is_finite() => {
                    Ok(Some((x, matches!(v, toml_edit::Value::Integer(_)))))
                }
                _ => Err(ctx.err(
                    v.span().or(span.clone()),
                    path,
                    format!("range `{k}` must be a finite number, got {v}"),
                )),
            },
            Some(_) => Err(ctx.err(span.clone(), path, format!("range `{k}` must be a number"))),
        }
    };
    let (Some((from, fi)), Some((to, ti))) = (get("from")?, get("to")?) else {
        return Err(ctx.err(span, path, "a range needs `from` and `to`"));
    };
    if to < from {
        return Err(ctx.err(
            span,
            path,
            format!("range `to` ({to}) is below `from` ({from})"),
        ));
    }
    let Some((step, si)) = get("step")? else {
        return Ok(Values::Interval {
            from,
            to,
            integer: fi && ti,
        });
    };
    if step <= 0.0 {
        return Err(ctx.err(span, path, format!("range `step` must be > 0, got {step}")));
    }
    let n = ((to - from) / step * (1.0 + 1e-12)).floor() + 1.0;
    if n > MAX_POINTS as f64 {
        return Err(ctx.err(
            span,
            path,
            format!("range expands to {n} values, more than {MAX_POINTS}"),
        ));
    }
    let integer = fi && ti && si;
    let vals = (0..n as usize)
        .map(|i| {
            let x = from + i as f64 * step;
            if integer {
                toml::Value::Integer(x.round() as i64)
            } else {
                // Round away the float noise of `from + i·step` (12 significant digits).
                let r: f64 = format!("{x:.12e}").parse().unwrap_or(x);
                toml::Value::Float(r)
            }
        })
        .collect();
    Ok(Values::List(vals))
}

fn collect_params(
    ctx: &Ctx,
    prefix: &str,
    item: &toml_edit::Item,
    out: &mut Vec<Param>,
) -> Result<(), SweepError> {
    let table: &dyn toml_edit::TableLike = match item {
        toml_edit::Item::Table(t) => t,
        toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => t,
        _ => {
            return Err(ctx.err(
                item_span(item),
                prefix,
                "must be a table of `path = [values]`",
            ))
        }
    };
    for (k, v) in table.iter() {
        let path = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        let key_span = table.key(k).and_then(|k| k.span());
        let span = key_span.clone().or_else(|| item_span(v));
        let full = format!("sweep.params.{path}");
        match v {
            toml_edit::Item::Value(toml_edit::Value::Array(a)) => {
                if a.is_empty() {
                    return Err(ctx.err(span, &full, "the list of values is empty"));
                }
                let vals = a
                    .iter()
                    .map(|x| {
                        to_toml(x).ok_or_else(|| {
                            ctx.err(x.span(), &full, format!("cannot read value {x}"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(Param {
                    path,
                    values: Values::List(vals),
                    at: ctx.loc(span, &full),
                });
            }
            _ => {
                let t: Option<&dyn toml_edit::TableLike> = match v {
                    toml_edit::Item::Table(t) => Some(t),
                    toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => Some(t),
                    _ => None,
                };
                match t {
                    Some(t) if t.contains_key("from") || t.contains_key("to") || t.contains_key("step") => {
                        let values = range(ctx, &full, t, span.clone())?;
                        out.push(Param {
                            path,
                            values,
                            at: ctx.loc(span, &full),
                        });
                    }
                    Some(_) => collect_params(ctx, &path, v, out)?,
                    None => {
                        return Err(ctx.err(
                            span,
                            &full,
                            format!("must be a list of values (e.g. [8, 16]) or a range {{ from = A, to = B, step = S }}, got {}", v.to_string().trim()),
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}

/// Read the `[sweep]` table of scenario `text` (None if the file has none). `scenario_seed` is the
/// default seed of the Latin hypercube.
pub fn parse_spec(
    file: &str,
    text: &str,
    scenario_seed: u64,
) -> Result<Option<SweepSpec>, SweepError> {
    let ctx = Ctx { file, text };
    let doc = toml_edit::ImDocument::parse(text)
        .map_err(|e| ctx.err(e.span(), "", e.message().to_string()))?;
    let Some(sweep) = doc.get("sweep") else {
        return Ok(None);
    };
    let Some(t) = sweep.as_table_like() else {
        return Err(ctx.err(item_span(sweep), "sweep", "must be a table"));
    };
    for (k, _) in t.iter() {
        if !OPTION_KEYS.contains(&k) {
            let span = t.key(k).and_then(|k| k.span());
            return Err(ctx.err(span, &format!("sweep.{k}"), format!("unknown key; [sweep] takes {} — parameters go in [sweep.params] (e.g. \"models.moe.experts\" = [8, 16])", OPTION_KEYS.join(", "))));
        }
    }
    let key_span = |k: &str| t.key(k).and_then(|k| k.span());
    let mode = match t.get("mode") {
        None => Mode::Grid,
        Some(v) => {
            let s = v.as_str().unwrap_or("");
            Mode::ALL
                .iter()
                .find(|(_, n)| *n == s)
                .map(|(m, _)| *m)
                .ok_or_else(|| {
                    ctx.err(
                        key_span("mode"),
                        "sweep.mode",
                        format!(
                            "must be \"grid\", \"zip\" or \"lhs\", got {}",
                            v.to_string().trim()
                        ),
                    )
                })?
        }
    };
    let samples = match t.get("samples") {
        None => None,
        Some(v) => match v.as_integer() {
            Some(n) if n > 0 && (n as u64) <= MAX_POINTS as u64 => Some(n as usize),
            _ => {
                return Err(ctx.err(
                    key_span("samples"),
                    "sweep.samples",
                    format!(
                        "must be an integer in 1..={MAX_POINTS}, got {}",
                        v.to_string().trim()
                    ),
                ))
            }
        },
    };
    let lhs_seed = match t.get("seed") {
        None => scenario_seed,
        Some(v) => match v.as_integer() {
            Some(n) if n >= 0 => n as u64,
            _ => {
                return Err(ctx.err(
                    key_span("seed"),
                    "sweep.seed",
                    format!(
                        "must be a non-negative integer, got {}",
                        v.to_string().trim()
                    ),
                ))
            }
        },
    };
    let seeds = match t.get("seeds").map(|v| (v.as_str(), v)) {
        None | Some((Some("per_point"), _)) => SeedMode::PerPoint,
        Some((Some("shared"), _)) => SeedMode::Shared,
        Some((_, v)) => {
            return Err(ctx.err(
                key_span("seeds"),
                "sweep.seeds",
                format!(
                    "must be \"per_point\" or \"shared\", got {}",
                    v.to_string().trim()
                ),
            ))
        }
    };
    let mut params = Vec::new();
    match t.get("params") {
        Some(p) => collect_params(&ctx, "", p, &mut params)?,
        None => {
            return Err(ctx.err(
                item_span(sweep),
                "sweep",
                "needs [sweep.params] with at least one `path = [values]`",
            ))
        }
    }
    if params.is_empty() {
        return Err(ctx.err(key_span("params"), "sweep.params", "has no parameters"));
    }
    for (i, p) in params.iter().enumerate() {
        if params[..i].iter().any(|q| q.path == p.path) {
            return Err(SweepError::Spec {
                at: p.at.clone(),
                msg: format!("`{}` is swept twice", p.path),
            });
        }
    }
    match mode {
        Mode::Lhs if samples.is_none() => {
            return Err(ctx.err(
                item_span(sweep),
                "sweep.samples",
                "mode = \"lhs\" needs `samples` (the number of points)",
            ));
        }
        Mode::Grid | Mode::Zip if samples.is_some() => {
            return Err(ctx.err(
                key_span("samples"),
                "sweep.samples",
                "only applies to mode = \"lhs\"",
            ));
        }
        Mode::Grid | Mode::Zip => {
            if let Some(p) = params
                .iter()
                .find(|p| matches!(p.values, Values::Interval { .. }))
            {
                return Err(SweepError::Spec { at: p.at.clone(), msg: format!("a range without `step` is continuous and needs mode = \"lhs\"; add `step` for mode = \"{}\"", mode.name()) });
            }
        }
        Mode::Lhs => {}
    }
    if mode == Mode::Zip {
        let n0 = list_len(&params[0]);
        if let Some(p) = params.iter().find(|p| list_len(p) != n0) {
            return Err(SweepError::Spec {
                at: p.at.clone(),
                msg: format!(
                    "mode = \"zip\" needs lists of one length: `{}` has {n0} values, `{}` has {}",
                    params[0].path,
                    p.path,
                    list_len(p)
                ),
            });
        }
    }
    let spec = SweepSpec {
        mode,
        samples,
        lhs_seed,
        seeds,
        params,
    };
    let n = spec.len_f64();
    if n > MAX_POINTS as f64 {
        return Err(ctx.err(
            item_span(sweep),
            "sweep",
            format!("expands to {n:.0} points, more than {MAX_POINTS}"),
        ));
    }
    Ok(Some(spec))
}

fn list_len(p: &Param) -> usize {
    match &p.values {
        Values::List(v) => v.len(),
        Values::Interval { .. } => 0,
    }
}

impl SweepSpec {
    fn len_f64(&self) -> f64 {
        match self.mode {
            Mode::Grid => self.params.iter().map(|p| list_len(p) as f64).product(),
            Mode::Zip => list_len(&self.params[0]) as f64,
            Mode::Lhs => self.samples.unwrap_or(0) as f64,
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.len_f64() as usize
    }

    /// Whether the sweep has no points (never, for a parsed spec).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every point in index order.
    pub fn points(&self) -> Vec<Point> {
        let n = self.len();
        match self.mode {
            Mode::Grid => (0..n)
                .map(|index| {
                    // Mixed-radix digits of the index, the last parameter varying fastest.
                    let mut rest = index;
                    let mut a =
                        vec![(String::new(), toml::Value::Boolean(false)); self.params.len()];
                    for (j, p) in self.params.iter().enumerate().rev() {
                        let Values::List(v) = &p.values else { continue };
                        a[j] = (p.path.clone(), v[rest % v.len()].clone());
                        rest /= v.len();
                    }
                    Point {
                        index,
                        assignments: a,
                    }
                })
                .collect(),
            Mode::Zip => (0..n)
                .map(|index| Point {
                    index,
                    assignments: self
                        .params
                        .iter()
                        .filter_map(|p| match &p.values {
                            Values::List(v) => Some((p.path.clone(), v[index].clone())),
                            Values::Interval { .. } => None,
                        })
                        .collect(),
                })
                .collect(),
            Mode::Lhs => {
                let mut rng = ChaCha8Rng::seed_from_u64(self.lhs_seed);
                // One column per parameter: a shuffled stratum per point, a uniform draw inside it.
                let cols: Vec<Vec<toml::Value>> = self
                    .params
                    .iter()
                    .map(|p| {
                        let mut strata: Vec<usize> = (0..n).collect();
                        strata.shuffle(&mut rng);
                        strata
                            .into_iter()
                            .map(|s| {
                                let u = (s as f64 + rng.gen::<f64>()) / n as f64;
                                lhs_value(&p.values, u)
                            })
                            .collect()
                    })
                    .collect();
                (0..n)
                    .map(|index| Point {
                        index,
                        assignments: self
                            .params
                            .iter()
                            .zip(&cols)
                            .map(|(p, c)| (p.path.clone(), c[index].clone()))
                            .collect(),
                    })
                    .collect()
            }
        }
    }
}

/// The value at quantile `u` in [0, 1) of a parameter's values.
fn lhs_value(v: &Values, u: f64) -> toml::Value {
    match v {
        Values::List(l) => l[((u * l.len() as f64) as usize).min(l.len() - 1)].clone(),
        Values::Interval { from, to, integer } => {
            if *integer {
                // Equal-width bins over the integers from..=to.
                let k = (u * (to - from + 1.0)).floor().min(to - from);
                toml::Value::Integer((from + k) as i64)
            } else {
                let x = from + u * (to - from);
                toml::Value::Float(format!("{x:.9e}").parse().unwrap_or(x))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: &str) -> Result<Option<SweepSpec>, SweepError> {
        parse_spec("t.toml", body, 7)
    }

    fn ints(p: &Point) -> Vec<i64> {
        p.assignments
            .iter()
            .map(|(_, v)| v.as_integer().unwrap_or(-1))
            .collect()
    }

    #[test]
    fn no_sweep_table_is_none() {
        assert_eq!(spec("name = \"x\"\n").ok(), Some(None));
    }

    #[test]
    fn grid_crosses_lists_first_param_slowest_in_file_order() {
        // Keys in non-alphabetical order: file order must be kept.
        let s = spec("[sweep.params]\n\"z.b\" = [1, 2]\n\"a.c\" = [10, 20, 30]\n")
            .unwrap()
            .unwrap();
        assert_eq!(s.len(), 6);
        let p = s.points();
        assert_eq!(p[0].assignments[0].0, "z.b");
        assert_eq!(
            p.iter().map(ints).collect::<Vec<_>>(),
            vec![
                vec![1, 10],
                vec![1, 20],
                vec![1, 30],
                vec![2, 10],
                vec![2, 20],
                vec![2, 30]
            ]
        );
    }

    #[test]
    fn dotted_keys_and_quoted_keys_give_the_same_paths() {
        let a = spec("[sweep.params]\nmodels.moe.experts = [8]\n")
            .unwrap()
            .unwrap();
        let b = spec("[sweep]\nparams = { \"models.moe.experts\" = [8] }\n")
            .unwrap()
            .unwrap();
        assert_eq!(a.params[0].path, "models.moe.experts");
        assert_eq!(b.params[0].path, "models.moe.experts");
    }

    #[test]
    fn stepped_range_includes_its_end_and_keeps_integers() {
        let s = spec("[sweep.params]\ncap = { from = 300, to = 700, step = 50 }\n")
            .unwrap()
            .unwrap();
        let v: Vec<i64> = s.points().iter().map(|p| ints(p)[0]).collect();
        assert_eq!(v, vec![300, 350, 400, 450, 500, 550, 600, 650, 700]);
        let s = spec("[sweep.params]\nx = { from = 0.1, to = 0.3, step = 0.1 }\n")
            .unwrap()
            .unwrap();
        let v: Vec<f64> = s
            .points()
            .iter()
            .map(|p| p.assignments[0].1.as_float().unwrap_or(-1.0))
            .collect();
        assert_eq!(v, vec![0.1, 0.2, 0.3]);
    }

    #[test]
    fn zip_pairs_lists_and_refuses_unequal_lengths() {
        let s = spec("[sweep]\nmode = \"zip\"\n[sweep.params]\na = [1, 2]\nb = [3, 4]\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            s.points().iter().map(ints).collect::<Vec<_>>(),
            vec![vec![1, 3], vec![2, 4]]
        );
        let e = spec("[sweep]\nmode = \"zip\"\n[sweep.params]\na = [1, 2]\nb = [3]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.toml:5:1") && e.ends_with("`b` has 1"), "{e}");
    }

    #[test]
    fn lhs_covers_every_stratum_once_and_is_seeded() {
        let body = "[sweep]\nmode = \"lhs\"\nsamples = 50\n[sweep.params]\nx = { from = 0.0, to = 1.0 }\nk = { from = 1, to = 50 }\n";
        let s = spec(body).unwrap().unwrap();
        let p = s.points();
        assert_eq!(p.len(), 50);
        let mut strata: Vec<usize> = p
            .iter()
            .map(|q| (q.assignments[0].1.as_float().unwrap_or(-1.0) * 50.0) as usize)
            .collect();
        strata.sort();
        assert_eq!(strata, (0..50).collect::<Vec<_>>());
        // Integer interval 1..=50 with 50 samples: each integer exactly once.
        let mut k: Vec<i64> = p
            .iter()
            .map(|q| q.assignments[1].1.as_integer().unwrap_or(-1))
            .collect();
        k.sort();
        assert_eq!(k, (1..=50).collect::<Vec<_>>());
        assert_eq!(spec(body).unwrap().unwrap().points(), p);
        let other = spec(&body.replace("samples = 50", "samples = 50\nseed = 8"))
            .unwrap()
            .unwrap()
            .points();
        assert_ne!(other, p);
    }

    #[test]
    fn bad_tables_are_errors_with_positions() {
        for (body, want) in [
            (
                "[sweep]\nmode = \"cube\"\n[sweep.params]\na = [1]\n",
                "t.toml:2:1: `sweep.mode`: must be \"grid\"",
            ),
            ("[sweep]\nexperts = [1]\n", "unknown key"),
            ("[sweep]\nmode = \"grid\"\n", "needs [sweep.params]"),
            ("[sweep.params]\na = []\n", "empty"),
            (
                "[sweep.params]\na = 3\n",
                "t.toml:2:1: `sweep.params.a`: must be a list",
            ),
            (
                "[sweep.params]\na = { from = 1, to = 5 }\n",
                "needs mode = \"lhs\"",
            ),
            (
                "[sweep.params]\na = { from = 5, to = 1, step = 1 }\n",
                "below",
            ),
            (
                "[sweep.params]\na = { from = 1, to = 5, step = 0 }\n",
                "step` must be > 0",
            ),
            (
                "[sweep]\nmode = \"lhs\"\n[sweep.params]\na = [1]\n",
                "needs `samples`",
            ),
            (
                "[sweep]\nsamples = 3\n[sweep.params]\na = [1]\n",
                "only applies",
            ),
            (
                "[sweep.params]\na = { from = 1, to = 1e9, step = 1e-3 }\n",
                "more than",
            ),
        ] {
            let e = spec(body).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(want), "{body}: {e}");
        }
    }
}
