//! Intel 8254 programmable interval timer.
