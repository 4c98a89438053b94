//! Intel 8237A ISA DMA controller pair.
