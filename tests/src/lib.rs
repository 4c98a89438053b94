//! placeholder
pub mod fixtures;
pub mod guests;
