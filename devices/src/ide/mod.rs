//! IDE storage.
