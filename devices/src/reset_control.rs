//! Reset control register (port 0xCF9).
