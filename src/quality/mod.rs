//! Scaling-law loss estimates (dense: Chinchilla, Krajewski; MoE with the expert count explicit: Clark, Abnar) and honest token accounting.

mod applicable;
mod batch;
pub mod diloco;
mod laws;
mod moe_laws;
mod tokens;

pub use applicable::{default_law, law_with_active_experts, laws_for, ModelShape};
pub use batch::{batch_token_worth, critical_batch_tokens, CriticalBatch, ALPHA_B, B_STAR_TOKENS};
pub use laws::{dense_loss, moe_loss, tokens_for_target_loss, LossEstimate, LossLaw, QualityError};
pub use tokens::{effective_tokens, FewerExperts};
