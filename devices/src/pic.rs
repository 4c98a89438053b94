//! Intel 8259A programmable interrupt controller pair.
