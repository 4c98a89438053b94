//! PCI configuration mechanism #1 with the i440FX host bridge and PIIX3 ISA bridge.
