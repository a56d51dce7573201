//! What a finished run means for the model: estimated loss, effective tokens and MFU.

use super::RunOutcome;
use crate::quality::{self, LossEstimate};
use crate::scenario::{Job, Scenario};
use crate::workload::FfnKind;

/// Quality and utilisation of one strategy's run.
#[derive(Debug, Clone)]
pub(crate) struct Assessment {
    /// Estimated final loss with the law used (None if the law could not be applied).
    pub loss: Option<LossEstimate>,
    /// Tokens the quality law counts (dropped assignments and reduced top-k discounted).
    pub effective_tokens: f64,
    /// Chinchilla estimate for a dense model (None for MoE).
    pub chinchilla: Option<LossEstimate>,
    /// Model FLOPs utilisation over training time (share of peak, 0–1).
    pub mfu: f64,
}

/// The parameter counts and routing shape of `job`'s model, as the loss laws read them.
pub(crate) fn model_shape(job: &Job) -> quality::ModelShape {
    let model = &job.model;
    let active = model.params_active() - model.embedding_params();
    let total = model.params_non_embedding();
    match &model.ffn {
        FfnKind::Dense => quality::ModelShape {
            active_params: active,
            total_params: total,
            experts: 0,
            top_k: 0,
            shared_experts: 0,
            granularity: 1.0,
        },
        // Granularity G = d_ff/d_expert with d_ff the GELU FFN of width 4·d_model (Krajewski et al. 2024);
        // an expert of SwiGLU width f holds as many weights as a GELU FFN of width 1.5·f.
        FfnKind::Moe(m) => quality::ModelShape {
            active_params: active,
            total_params: total,
            experts: m.experts,
            top_k: m.top_k,
            shared_experts: m.shared_experts,
            granularity: (4.0 * model.d_model as f64 / (1.5 * m.expert_ffn_hidden as f64)).max(1.0),
        },
    }
}

/// The scaling law a job's loss is estimated with: the default of [`quality::laws_for`] (the MoE law
/// has the expert count and active parameters explicit; a dense job gets the same family's dense member).
pub(crate) fn loss_law(job: &Job) -> quality::LossLaw {
    quality::default_law(&model_shape(job))
}

/// The scaling law of `job` in scenario `s`: law number `s.law_index` of [`quality::laws_for`] when the
/// Monte Carlo drew one (a dense job gets its family's dense member at the same index, so dense and
/// MoE stay on one data set), else [`loss_law`]. Both the token target and the reported loss use it.
pub(crate) fn law_of(s: &Scenario, job: &Job) -> quality::LossLaw {
    s.law_index
        .and_then(|j| quality::laws_for(&model_shape(job)).get(j).copied())
        .unwrap_or_else(|| loss_law(job))
}

/// Loss, effective tokens and MFU of `job`'s run `outcome` in scenario `s`.
pub(crate) fn assess(s: &Scenario, job: &Job, outcome: &RunOutcome) -> Assessment {
    let model = &job.model;
    let sums = &outcome.sums;
    // Summed step by step in the run, with the rule of `quality::effective_tokens`.
    let effective_tokens = outcome.effective_tokens;
    let loss = law_of(s, job).loss(effective_tokens).ok();
    let chinchilla = match &model.ffn {
        FfnKind::Dense => quality::dense_loss(model.params_total(), outcome.tokens).ok(),
        FfnKind::Moe(_) => None,
    };
    let acc = &s.cluster.accelerator;
    let peak = acc.peak_flops.get(job.plan.precision).unwrap_or(0.0) * s.cluster.gpus as f64;
    let mfu = if sums.time_s > 0.0 && peak > 0.0 {
        model.flops_per_token_train() * outcome.tokens / (sums.time_s * peak)
    } else {
        0.0
    };
    Assessment {
        loss,
        effective_tokens,
        chinchilla,
        mfu,
    }
}
