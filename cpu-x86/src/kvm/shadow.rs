//! Shadow RAM on KVM: one memory slot per shadow segment (0xC0000-0xFFFFF), remapped when
//! the chipset changes a segment's enables.
//!
//! A segment whose reads reach RAM is a slot over guest RAM, read-only when its writes do
//! not (so they exit to userspace, where the address map drops them). A segment whose reads
//! go to the ROM side is a read-only slot over the ROM side's mapping; its writes exit too,
//! and reach RAM through the address map when the write enable is set. Without
//! `KVM_CAP_READONLY_MEM` the slots are writable and write protection is not enforced (logged
//! once).

use super::engine::host_err;
use crate::engine::EngineError;
use kvm_bindings::{kvm_userspace_memory_region, KVM_MEM_READONLY};
use kvm_ioctls::VmFd;
use rx86_core::shadow::{enable, ShadowControl, SEGMENT_COUNT, SHADOW_BASE};
use std::sync::Arc;

/// The slots of the shadow segments and what they were last set to.
pub(super) struct ShadowSlots {
    control: Arc<ShadowControl>,
    first_slot: u32,
    /// Host addresses of the region's RAM side and ROM side.
    ram: *mut u8,
    rom: *mut u8,
    readonly_ok: bool,
    /// The generation and enables the slots follow (`None` before the first sync).
    applied: Option<(u64, [u8; SEGMENT_COUNT])>,
    warned: bool,
}

impl ShadowSlots {
    /// Slots `first_slot..first_slot + SEGMENT_COUNT` for a shadow region whose RAM side
    /// starts at host address `ram` and ROM side at `rom`; nothing is mapped until
    /// [`ShadowSlots::sync`].
    pub(super) fn new(
        control: Arc<ShadowControl>,
        first_slot: u32,
        ram: *mut u8,
        rom: *mut u8,
        readonly_ok: bool,
    ) -> Self {
        ShadowSlots { control, first_slot, ram, rom, readonly_ok, applied: None, warned: false }
    }

    /// Remaps the segments whose enables changed since the last call.
    pub(super) fn sync(&mut self, vm: &VmFd) -> Result<(), EngineError> {
        let generation = self.control.generation();
        if self.applied.is_some_and(|(g, _)| g == generation) {
            return Ok(());
        }
        let bits: [u8; SEGMENT_COUNT] = std::array::from_fn(|i| self.control.get(i));
        for (index, &b) in bits.iter().enumerate() {
            if self.applied.is_some_and(|(_, old)| old[index] == b) {
                continue;
            }
            self.map_segment(vm, index, b, self.applied.is_some())?;
        }
        self.applied = Some((generation, bits));
        Ok(())
    }

    fn map_segment(&mut self, vm: &VmFd, index: usize, bits: u8, replace: bool) -> Result<(), EngineError> {
        let (base, len) = ShadowControl::segment_range(index);
        let offset = (base - SHADOW_BASE) as usize;
        let (side, protect) =
            if bits & enable::READ != 0 { (self.ram, bits & enable::WRITE == 0) } else { (self.rom, true) };
        if protect && !self.readonly_ok && !self.warned {
            self.warned = true;
            log::warn!("KVM lacks read-only memory slots: write-protected shadow RAM stays writable");
        }
        let slot = self.first_slot + index as u32;
        // SAFETY: `offset + len` lies inside the shadow region, whose RAM and ROM sides are
        // at least that long (checked when the region was added to the address map).
        let host = unsafe { side.add(offset) };
        let mut region = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: base,
            memory_size: 0,
            userspace_addr: host as u64,
        };
        if replace {
            // KVM cannot change a slot's backing or flags in place: delete it first.
            // SAFETY: a zero-sized region deletes the slot; no memory is referenced.
            unsafe { vm.set_user_memory_region(region) }.map_err(|e| host_err("shadow slot removal", e))?;
        }
        region.memory_size = len;
        region.flags = if protect && self.readonly_ok { KVM_MEM_READONLY } else { 0 };
        // SAFETY: the host range is part of a live mapping owned by the machine, which keeps
        // it alive longer than this VM (the board drops the engine first).
        unsafe { vm.set_user_memory_region(region) }.map_err(|e| host_err("shadow slot", e))?;
        Ok(())
    }
}
