//! rx86 library
