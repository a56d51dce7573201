//! The routing a scenario asks for (router kind and parameters, choice, placement) and its one table of names.

use super::TraceReplay;
use super::{Collapse, PastEnd, PlacementPolicy, Router, RouterModel, RoutingError, TraceFile};
use std::path::PathBuf;
use std::sync::Arc;

/// A router by name: the one table both scenario files (`routing.model`) and `trace synth` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouterKind {
    /// Exactly equal loads.
    Balanced,
    /// Uniform router (sampling noise only).
    Uniform,
    /// Zipf-skewed popularity.
    Zipf,
    /// Dirichlet popularity per layer with a drift.
    Dirichlet,
    /// Noisy top-k gating over Zipf-skewed logits.
    NoisyTopk,
    /// A recorded trace file.
    Trace,
}

impl RouterKind {
    /// Every router with its name, in the order `--help` and errors list them.
    pub const ALL: [(RouterKind, &'static str); 6] = [
        (RouterKind::Balanced, "balanced"),
        (RouterKind::Uniform, "uniform"),
        (RouterKind::Zipf, "zipf"),
        (RouterKind::Dirichlet, "dirichlet"),
        (RouterKind::NoisyTopk, "noisy_topk"),
        (RouterKind::Trace, "trace"),
    ];

    /// The name in scenario files and on the command line.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("?", |(_, n)| *n)
    }

    /// The router called `name`, if any.
    pub fn from_name(name: &str) -> Option<RouterKind> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(k, _)| *k)
    }

    /// All names, comma-separated (for errors and `--help`).
    pub fn names() -> String {
        Self::ALL.map(|(_, n)| n).join(", ")
    }
}

/// Where routing loads come from.
#[derive(Debug, Clone)]
pub enum RoutingSource {
    /// Exactly equal loads (the perfectly balanced limit).
    Balanced,
    /// Uniform router (sampling noise only).
    Uniform,
    /// Zipf-skewed popularity with exponent `s`.
    Zipf(f64),
    /// Dirichlet(α) popularity per layer with a log-normal drift of σ per step.
    Dirichlet {
        /// Concentration.
        alpha: f64,
        /// Drift per step.
        drift: f64,
    },
    /// Noisy top-k gating over Zipf(s)-skewed logits, `tokens` sampled per layer and step.
    NoisyTopK {
        /// Zipf exponent of the clean gate.
        s: f64,
        /// Logit noise standard deviation.
        noise: f64,
        /// Tokens sampled per layer and step.
        tokens: u32,
    },
    /// A recorded trace file.
    Trace {
        /// Trace file.
        path: PathBuf,
        /// Whether a trace of another shape may be mapped onto the model.
        map: bool,
        /// What happens past the trace's end.
        past_end: PastEnd,
    },
}

impl RoutingSource {
    /// The router kind of this source (its name in the table).
    pub fn kind(&self) -> RouterKind {
        match self {
            RoutingSource::Balanced => RouterKind::Balanced,
            RoutingSource::Uniform => RouterKind::Uniform,
            RoutingSource::Zipf(_) => RouterKind::Zipf,
            RoutingSource::Dirichlet { .. } => RouterKind::Dirichlet,
            RoutingSource::NoisyTopK { .. } => RouterKind::NoisyTopk,
            RoutingSource::Trace { .. } => RouterKind::Trace,
        }
    }
}

/// Which side chooses: tokens pick their top-k experts, or experts pick their top-C tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingChoice {
    /// Token-choice top-k with the model's capacity factor (or dropless).
    TokenChoice,
    /// Expert-choice (Zhou et al. 2022): every expert takes exactly its capacity of tokens.
    ExpertChoice,
}

/// The routing of a scenario's MoE layers.
#[derive(Debug, Clone)]
pub struct RoutingSpec {
    /// Where loads come from.
    pub source: RoutingSource,
    /// An optional collapse growing over training (synthetic sources).
    pub collapse: Option<Collapse>,
    /// Token choice or expert choice.
    pub choice: RoutingChoice,
    /// Expert placement on expert-parallel ranks.
    pub placement: PlacementPolicy,
    /// Re-place experts every this many steps from the loads seen since the last placement.
    pub rebalance_every_steps: Option<u64>,
}

impl Default for RoutingSpec {
    fn default() -> Self {
        Self {
            source: RoutingSource::Uniform,
            collapse: None,
            choice: RoutingChoice::TokenChoice,
            placement: PlacementPolicy::Contiguous,
            rebalance_every_steps: None,
        }
    }
}

impl Router {
    /// The router `spec` describes for `layers` MoE layers of `experts` experts routing each token to
    /// `top_k` of them; `trace` is the loaded trace of a trace source; `seed` fixes every random choice.
    pub fn from_spec(
        spec: &RoutingSpec,
        trace: Option<&Arc<TraceFile>>,
        experts: usize,
        layers: usize,
        top_k: usize,
        seed: u64,
    ) -> Result<Router, RoutingError> {
        let model = match (&spec.source, trace) {
            (RoutingSource::Trace { map, past_end, .. }, Some(t)) => RouterModel::Trace(
                TraceReplay::new(t.clone(), layers, experts, *past_end, *map, seed)?,
            ),
            (RoutingSource::Trace { path, .. }, None) => {
                return Err(RoutingError::Shape {
                    path: path.clone(),
                    msg: "the trace was not loaded before the run".into(),
                })
            }
            (RoutingSource::Balanced, _) => RouterModel::Balanced,
            (RoutingSource::Uniform, _) => RouterModel::Uniform,
            (RoutingSource::Zipf(z), _) => RouterModel::Zipf { s: *z },
            (RoutingSource::Dirichlet { alpha, drift }, _) => RouterModel::Dirichlet {
                alpha: *alpha,
                drift: *drift,
            },
            (RoutingSource::NoisyTopK { s, noise, tokens }, _) => RouterModel::NoisyTopK {
                s: *s,
                noise: *noise,
                k: top_k,
                tokens: *tokens as usize,
            },
        };
        let router = Router::new(model, experts, layers, seed);
        Ok(match spec.collapse {
            Some(c) => router.with_collapse(c),
            None => router,
        })
    }
}
