//! Reading the `[sweep]` table: its options, and each parameter's list, stepped range or interval,
//! with file:line:col errors.

use super::points::list_len;
use super::{Mode, Param, SeedMode, SweepSpec, Values};
use crate::scenario::{line_col, Location};
use crate::sweep::SweepError;

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
