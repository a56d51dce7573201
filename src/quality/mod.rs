//! Scaling-law loss estimates (dense: Chinchilla; MoE: Krajewski et al. 2024) and honest token accounting.

mod laws;
mod tokens;

pub use laws::{dense_loss, moe_loss, tokens_for_target_loss, LossEstimate, LossLaw, QualityError};
pub use tokens::effective_tokens;
