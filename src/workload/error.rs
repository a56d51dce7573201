//! Error type of the workload module: invalid model/plan fields, non-dividing batches, plans that do not fit.

use thiserror::Error;

/// Errors from validating a model or parallel plan, or from checking that a plan fits in memory.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum WorkloadError {
    /// A field has a value outside its valid range or breaks a divisibility rule.
    #[error("invalid value for `{field}`: {value} ({valid})")]
    InvalidField {
        /// Key path of the field, e.g. `model.top_k` or `plan.tp`.
        field: &'static str,
        /// The value that was given, as text.
        value: String,
        /// What would be valid.
        valid: String,
    },
    /// `plan.global_batch_seqs` is not a multiple of `plan.dp * plan.micro_batch_seqs`.
    #[error(
        "`plan.global_batch_seqs` = {global} is not divisible by `plan.dp` ({dp}) x `plan.micro_batch_seqs` ({micro}) = {step}; nearest valid values: {lower} or {upper}"
    )]
    BatchNotDivisible {
        /// Global batch in sequences.
        global: u32,
        /// Data-parallel degree.
        dp: u32,
        /// Micro-batch size in sequences.
        micro: u32,
        /// `dp * micro`, the granularity the global batch must be a multiple of.
        step: u64,
        /// Nearest valid global batch at or below the given one (at least `step`).
        lower: u64,
        /// Nearest valid global batch above the given one.
        upper: u64,
    },
    /// `dp * tp * pp` does not match the number of GPUs available.
    #[error(
        "`plan.dp` x `plan.tp` x `plan.pp` = {dp} x {tp} x {pp} = {product} GPUs, but {available} GPUs are available; the product must equal the GPU count"
    )]
    GpuCountMismatch {
        /// Data-parallel degree.
        dp: u32,
        /// Tensor-parallel degree.
        tp: u32,
        /// Pipeline-parallel degree.
        pp: u32,
        /// `dp * tp * pp`.
        product: u64,
        /// GPUs available.
        available: u32,
    },
    /// The per-GPU memory need exceeds the HBM capacity.
    #[error(
        "plan does not fit in GPU memory: needs {need_gib:.1} GiB per GPU, has {have_gib:.1} GiB, over by {over_gib:.1} GiB ({breakdown})"
    )]
    DoesNotFit {
        /// Memory needed per GPU [GiB].
        need_gib: f64,
        /// HBM capacity per GPU [GiB].
        have_gib: f64,
        /// `need_gib - have_gib` [GiB].
        over_gib: f64,
        /// Human-readable breakdown (weights, grads, optimizer, activations).
        breakdown: String,
    },
}

/// Shorthand for an [`WorkloadError::InvalidField`].
pub(crate) fn invalid(
    field: &'static str,
    value: impl ToString,
    valid: impl ToString,
) -> WorkloadError {
    WorkloadError::InvalidField {
        field,
        value: value.to_string(),
        valid: valid.to_string(),
    }
}
