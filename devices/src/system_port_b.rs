//! System control port B (port 0x61): PIT gate 2, speaker and OUT2 status.
