//! placeholder
pub mod fixtures;
pub mod guests;
pub mod rx86_bin;
