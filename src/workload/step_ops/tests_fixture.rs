//! The step operation tests' shared fixture: a small dense model, its one-rank plan, and ops by name.

use super::super::arch::{Act, Arch, NormKind};
use super::super::model::{FfnKind, ModelSpec};
use super::super::plan::ParallelPlan;
use super::super::precision::Precision;
use super::{Op, Phase, StepOps};

/// Dense d 512, 2 layers, 8 heads of 64, seq 128, vocab 1000, GELU FFN 2048, LayerNorm; the
/// other architecture keys from `arch`.
pub(super) fn dense(arch: Arch) -> ModelSpec {
    ModelSpec {
        name: "dense".into(),
        layers: 2,
        d_model: 512,
        heads: 8,
        kv_heads: 8,
        seq_len: 128,
        vocab: 1000,
        ffn_hidden: 2048,
        ffn: FfnKind::Dense,
        arch: Arch {
            act: Act::Gelu,
            norm: NormKind::LayerNorm,
            ..arch
        },
    }
}

/// One data-parallel rank of `tp` GPUs in `precision`: one micro-batch of 2 sequences per step.
pub(super) fn plan(precision: Precision, tp: u32) -> ParallelPlan {
    ParallelPlan {
        tp,
        micro_batch_seqs: 2,
        global_batch_seqs: 2,
        ..ParallelPlan::single_gpu(precision)
    }
}

/// The ops named `name` in `phase` of stage 0's micro-batch.
pub(super) fn named<'a>(s: &'a StepOps, name: &str, phase: Phase) -> Vec<&'a Op> {
    s.stages[0]
        .micro_batch()
        .filter(|o| o.name == name && o.phase == phase)
        .collect()
}
