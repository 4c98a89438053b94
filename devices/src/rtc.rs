//! Motorola MC146818 CMOS RAM and real-time clock.
