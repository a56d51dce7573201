//! moesim: discrete-event simulator of datacenter training energy for dense and MoE models.
#![warn(missing_docs)]
