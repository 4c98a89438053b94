//! Port 0x92: fast A20 gate and fast reset.
