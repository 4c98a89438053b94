//! ACPI PM1a event/control blocks and the PM timer.
