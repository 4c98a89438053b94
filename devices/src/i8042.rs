//! Intel 8042 keyboard controller.
