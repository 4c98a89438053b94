//! Debug ports: POST codes, the 0xE9 console and isa-debug-exit.
