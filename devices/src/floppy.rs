//! Intel 82077AA floppy disk controller.
