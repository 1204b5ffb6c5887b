//! One module per endpoint group. What they share is in [`crate::request`] (reading)
//! and [`crate::answer`] (writing).

pub mod auth;
pub mod cli;
pub mod device;
pub mod forward_auth;
pub mod info;
pub mod kubeconfig;
pub mod login;
pub mod sign_out;
