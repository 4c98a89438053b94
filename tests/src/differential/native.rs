//! Runs a sequence on the host CPU.
//!
//! The fixed region of [`layout`] is mapped read-write-execute at its fixed address
//! (`MAP_FIXED_NOREPLACE`, below 4 GiB so 32-bit code reaches it). A trampoline saves
//! the host's callee-saved registers and RSP, loads the case's GPRs and RFLAGS, jumps
//! to the sequence, and the sequence's final `jmp` lands in an exit stub that stores
//! every GPR and RFLAGS and returns to Rust. 32-bit sequences run in the host's
//! compatibility-mode code segment (selector `0x23` on Linux x86-64), entered with a
//! far call and left with a far return to `0x33`.
//!
//! A fault (SIGFPE for #DE, SIGSEGV/SIGBUS for #GP/#SS/#PF, SIGILL for #UD, SIGTRAP)
//! inside the region is caught by a `sigaction` handler running on an alternate
//! stack: it records the signal, RIP, RFLAGS and GPRs from the `ucontext` and rewrites
//! the context's RIP (and CS) to a recovery stub that returns to Rust through the same
//! path as the exit stub. Faults outside the region restore the default action and
//! re-fault.

use super::gen::Case;
use super::layout::{CODE, CODE_LEN, DATA, DATA_LEN, IO, REGION, REGION_LEN, STACK_TOP, TRAMPOLINE};
use super::{Fault, Mode, Outcome, Reference, SetupError};
use iced_x86::code_asm::*;
use iced_x86::{BlockEncoderOptions, Code, Instruction, MemoryOperand};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Host user code segment selectors on Linux x86-64 (`__USER_CS`, `__USER32_CS`).
const USER64_CS: u64 = 0x33;
const USER32_CS: u64 = 0x23;

/// Offsets in the I/O block.
const IN_GPR: u64 = IO;
const IN_FLAGS: u64 = IO + 0x80;
const OUT_GPR: u64 = IO + 0x100;
const OUT_FLAGS: u64 = IO + 0x180;
const SAVED_RSP: u64 = IO + 0x188;
const FAULT_SIG: u64 = IO + 0x190;
const FAULT_RIP: u64 = IO + 0x198;
/// m16:32 far pointer to the 32-bit trampoline.
const FAR_PTR: u64 = IO + 0x1a0;
const SAVED_ESP32: u64 = IO + 0x1a8;
/// The host's MXCSR, restored on the way back (a sequence's SIMD unit sets its own).
const SAVED_MXCSR: u64 = IO + 0x1b0;

/// Where the 32-bit half of the trampolines starts.
const TRAMPOLINE32: u64 = TRAMPOLINE + 0x800;

/// Signals a sequence can raise.
const SIGNALS: [i32; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGTRAP];

/// `ucontext` register slots of RAX..R15 in encoding order.
const UC_GPR: [i32; 16] = [
    libc::REG_RAX,
    libc::REG_RCX,
    libc::REG_RDX,
    libc::REG_RBX,
    libc::REG_RSP,
    libc::REG_RBP,
    libc::REG_RSI,
    libc::REG_RDI,
    libc::REG_R8,
    libc::REG_R9,
    libc::REG_R10,
    libc::REG_R11,
    libc::REG_R12,
    libc::REG_R13,
    libc::REG_R14,
    libc::REG_R15,
];

/// Addresses of the assembled trampolines.
#[derive(Debug, Clone, Copy)]
struct Trampolines {
    entry64: u64,
    entry32: u64,
    exit64: u64,
    exit32: u64,
    recover: u64,
}

/// The recovery stub's address, read by the signal handler.
static RECOVER: OnceLock<u64> = OnceLock::new();

/// The host CPU, locked for one thread (the region is process-wide).
pub struct NativeCpu {
    _guard: MutexGuard<'static, ()>,
    tramp: Trampolines,
}

static LOCK: Mutex<()> = Mutex::new(());
static SETUP: OnceLock<Result<Trampolines, String>> = OnceLock::new();

thread_local! {
    /// This thread's alternate signal stack (installed once per thread).
    static ALT_STACK: Vec<u8> = install_alt_stack();
}

fn install_alt_stack() -> Vec<u8> {
    let mut stack = vec![0u8; 256 * 1024];
    let alt = libc::stack_t { ss_sp: stack.as_mut_ptr().cast(), ss_flags: 0, ss_size: stack.len() };
    // SAFETY: `alt` describes a live buffer owned by this thread-local for the life of
    // the thread; the kernel only uses it while delivering signals to this thread.
    unsafe { libc::sigaltstack(&alt, std::ptr::null_mut()) };
    stack
}

impl NativeCpu {
    /// Maps the region and installs the handlers (once per process), then takes the
    /// process-wide lock for this thread.
    pub fn lock() -> Result<NativeCpu, SetupError> {
        let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let tramp = SETUP.get_or_init(|| setup().map_err(|e| e.to_string())).clone();
        let tramp = tramp.map_err(SetupError::Assemble)?;
        ALT_STACK.with(|s| s.len());
        Ok(NativeCpu { _guard: guard, tramp })
    }
}

impl Reference for NativeCpu {
    /// Runs `case` (encoded as `code`) on the host and returns what it did.
    fn run(&mut self, case: &Case, code: &[u8], end: u64) -> Outcome {
        let exit = if case.mode == Mode::Long64 { self.tramp.exit64 } else { self.tramp.exit32 };
        let mut code = code.to_vec();
        code.extend(jump_to(case.mode, end, exit));
        assert!(code.len() as u64 <= CODE_LEN, "sequence too long");
        // SAFETY: the region [REGION, REGION+REGION_LEN) is our private RWX mapping
        // (made in `setup` and never unmapped); the lock serialises all users, and the
        // offsets written are inside it.
        unsafe {
            write_bytes(CODE, &code);
            write_bytes(DATA, &case.data);
            for (i, v) in case.gpr.iter().enumerate() {
                write_u64(IN_GPR + 8 * i as u64, *v);
                write_u64(OUT_GPR + 8 * i as u64, 0);
            }
            write_u64(IN_FLAGS, case.rflags);
            write_u64(OUT_FLAGS, 0);
            write_u64(FAULT_SIG, 0);
            write_u64(FAULT_RIP, 0);
        }
        let entry = if case.mode == Mode::Long64 { self.tramp.entry64 } else { self.tramp.entry32 };
        // SAFETY: `entry` is the trampoline assembled in `setup`: it follows the C ABI
        // (saves and restores the callee-saved registers and RSP, clears DF) and
        // returns through the exit or recovery stub whatever the sequence does, since
        // the sequence only touches the data area and registers.
        unsafe {
            let f: extern "C" fn() = std::mem::transmute::<usize, extern "C" fn()>(entry as usize);
            f();
        }
        let mut data = vec![0u8; DATA_LEN];
        // SAFETY: as above, reads inside our mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(DATA as *const u8, data.as_mut_ptr(), DATA_LEN);
            let mut gpr = [0u64; 16];
            let regs = if case.mode == Mode::Long64 { 16 } else { 8 };
            for (i, g) in gpr.iter_mut().enumerate().take(regs) {
                *g = read_u64(OUT_GPR + 8 * i as u64) & case.mode.gpr_mask();
            }
            let sig = read_u64(FAULT_SIG) as i32;
            let fault = (sig != 0).then_some(match sig {
                libc::SIGFPE => Fault::DivideError,
                libc::SIGILL => Fault::InvalidOpcode,
                libc::SIGTRAP => Fault::Trap,
                _ => Fault::Protection,
            });
            let rip = if fault.is_some() { read_u64(FAULT_RIP) } else { end };
            Outcome { gpr, rip, rflags: read_u64(OUT_FLAGS), data, fault, stopped: None }
        }
    }
}

/// The sequence's final jump to the exit stub.
fn jump_to(mode: Mode, at: u64, target: u64) -> Vec<u8> {
    let mut a = CodeAssembler::new(mode.bitness()).expect("bitness");
    a.jmp(target).expect("jmp");
    a.assemble(at).expect("exit jump in range")
}

/// # Safety
/// `addr..addr+bytes.len()` must be inside the mapped region.
unsafe fn write_bytes(addr: u64, bytes: &[u8]) {
    // SAFETY: guaranteed by the caller.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) }
}

/// # Safety
/// `addr` must be an 8-byte slot inside the mapped region.
unsafe fn write_u64(addr: u64, v: u64) {
    // SAFETY: guaranteed by the caller; volatile because machine code reads it.
    unsafe { std::ptr::write_volatile(addr as *mut u64, v) }
}

/// # Safety
/// `addr` must be an 8-byte slot inside the mapped region.
unsafe fn read_u64(addr: u64) -> u64 {
    // SAFETY: guaranteed by the caller; volatile because machine code wrote it.
    unsafe { std::ptr::read_volatile(addr as *const u64) }
}

/// Maps the region, assembles the trampolines into it and installs the handlers.
fn setup() -> Result<Trampolines, SetupError> {
    // SAFETY: a fresh anonymous private mapping at a fixed address that must not
    // replace anything (MAP_FIXED_NOREPLACE fails instead).
    let p = unsafe {
        libc::mmap(
            REGION as *mut libc::c_void,
            REGION_LEN as usize,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED || p as u64 != REGION {
        return Err(SetupError::Map(std::io::Error::last_os_error()));
    }
    let (code64, code32, tramp) = assemble().map_err(|e| SetupError::Assemble(e.to_string()))?;
    // SAFETY: both blobs fit their halves of the trampoline page inside the mapping.
    unsafe {
        assert!(code64.len() <= 0x800 && code32.len() <= 0x800);
        write_bytes(TRAMPOLINE, &code64);
        write_bytes(TRAMPOLINE32, &code32);
        write_u64(FAR_PTR, TRAMPOLINE32 | (USER32_CS << 32));
    }
    RECOVER.get_or_init(|| tramp.recover);
    for sig in SIGNALS {
        // SAFETY: a zeroed sigaction is a valid starting value; the handler is an
        // `extern "C"` function with the SA_SIGINFO signature.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_fault as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(SetupError::Signal(std::io::Error::last_os_error()));
        }
    }
    Ok(tramp)
}

/// Register lists in encoding order, without the stack pointer (index 4).
const GPR64: [AsmRegister64; 16] = [rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15];
const GPR32: [AsmRegister32; 8] = [eax, ecx, edx, ebx, esp, ebp, esi, edi];

/// Assembles the 64-bit trampolines (at [`TRAMPOLINE`]) and the 32-bit ones (at
/// [`TRAMPOLINE32`]).
fn assemble() -> Result<(Vec<u8>, Vec<u8>, Trampolines), IcedError> {
    let callee_saved = [rbx, rbp, r12, r13, r14, r15];
    let mut a = CodeAssembler::new(64)?;
    let mut entry64 = a.create_label();
    let mut entry32 = a.create_label();
    let mut exit64 = a.create_label();
    let mut recover = a.create_label();

    // entry64: save the host, load the case, run the sequence.
    a.set_label(&mut entry64)?;
    for r in callee_saved {
        a.push(r)?;
    }
    a.mov(qword_ptr(SAVED_RSP), rsp)?;
    a.stmxcsr(dword_ptr(SAVED_MXCSR))?;
    // Null DS and ES, as Linux starts 64-bit code (an earlier sequence may have
    // loaded others).
    a.xor(eax, eax)?;
    a.mov(ds, eax)?;
    a.mov(es, eax)?;
    a.push(qword_ptr(IN_FLAGS))?;
    a.popfq()?;
    a.mov(rsp, qword_ptr(IN_GPR + 32))?;
    for (i, r) in GPR64.iter().enumerate().filter(|(i, _)| *i != 4) {
        a.mov(*r, qword_ptr(IN_GPR + 8 * i as u64))?;
    }
    a.jmp(CODE)?;

    // exit64: store the result, then return to the host.
    a.set_label(&mut exit64)?;
    for (i, r) in GPR64.iter().enumerate() {
        a.mov(qword_ptr(OUT_GPR + 8 * i as u64), *r)?;
    }
    // Back on the host stack (MOV keeps the flags) before PUSHFQ, so that the
    // sequence's stack in the data area is not written.
    a.mov(rsp, qword_ptr(SAVED_RSP))?;
    a.pushfq()?;
    a.pop(qword_ptr(OUT_FLAGS))?;
    a.set_label(&mut recover)?;
    a.mov(rsp, qword_ptr(SAVED_RSP))?;
    // The C ABI's floating-point state: the host's MXCSR, an empty x87 stack with the
    // default control word (a sequence that faulted may have left MMX registers in use).
    a.ldmxcsr(dword_ptr(SAVED_MXCSR))?;
    a.fninit()?;
    // Host code expects DF and AC clear (and IF stays as it is at CPL 3).
    a.push(0)?;
    a.popfq()?;
    for r in callee_saved.iter().rev() {
        a.pop(*r)?;
    }
    a.ret()?;

    // entry32: save the host, far-call the 32-bit trampoline on a stack below 4 GiB.
    a.set_label(&mut entry32)?;
    for r in callee_saved {
        a.push(r)?;
    }
    a.mov(qword_ptr(SAVED_RSP), rsp)?;
    a.stmxcsr(dword_ptr(SAVED_MXCSR))?;
    a.mov(rsp, STACK_TOP)?;
    a.add_instruction(Instruction::with1(Code::Call_m1632, MemoryOperand::with_displ(FAR_PTR, 4))?)?;
    a.jmp(recover)?;
    let res = a.assemble_options(TRAMPOLINE, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let addr = |l: CodeLabel| res.label_ip(&l);
    let tramp64 = (addr(entry64)?, addr(entry32)?, addr(exit64)?, addr(recover)?);
    let code64 = res.inner.code_buffer.clone();

    let mut b = CodeAssembler::new(32)?;
    let mut exit32 = b.create_label();
    // 64-bit Linux runs with null DS/ES, which compatibility mode cannot use: load
    // the user data selector from SS.
    b.mov(eax, ss)?;
    b.mov(ds, eax)?;
    b.mov(es, eax)?;
    // (The exit stub addresses through SS: the sequence may have loaded a null DS.)
    b.mov(dword_ptr(SAVED_ESP32), esp)?;
    b.push(dword_ptr(IN_FLAGS))?;
    b.popfd()?;
    b.mov(esp, dword_ptr(IN_GPR + 32))?;
    for (i, r) in GPR32.iter().enumerate().filter(|(i, _)| *i != 4) {
        b.mov(*r, dword_ptr(IN_GPR + 8 * i as u64))?;
    }
    b.jmp(CODE)?;
    b.set_label(&mut exit32)?;
    for (i, r) in GPR32.iter().enumerate() {
        b.mov(dword_ptr(OUT_GPR + 8 * i as u64).ss(), *r)?;
    }
    b.mov(esp, dword_ptr(SAVED_ESP32).ss())?;
    b.pushfd()?;
    b.pop(dword_ptr(OUT_FLAGS).ss())?;
    b.add_instruction(Instruction::with(Code::Retfd))?;
    let res32 = b.assemble_options(TRAMPOLINE32, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let exit32 = res32.label_ip(&exit32)?;
    let code32 = res32.inner.code_buffer.clone();
    let (entry64, entry32, exit64, recover) = tramp64;
    Ok((code64, code32, Trampolines { entry64, entry32, exit64, exit32, recover }))
}

/// The fault handler: records the fault and resumes at the recovery stub.
extern "C" fn on_fault(sig: libc::c_int, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `ucontext_t` to an SA_SIGINFO handler; the
    // I/O block is inside our mapping, which exists whenever a fault inside the region
    // can happen.
    unsafe {
        let uc = &mut *(ctx as *mut libc::ucontext_t);
        let g = &mut uc.uc_mcontext.gregs;
        let rip = g[libc::REG_RIP as usize] as u64;
        let recover = RECOVER.get().copied();
        let ours = (REGION..REGION + REGION_LEN).contains(&rip);
        let Some(recover) = recover.filter(|_| ours) else {
            libc::signal(sig, libc::SIG_DFL);
            return;
        };
        for (i, slot) in UC_GPR.iter().enumerate() {
            write_u64(OUT_GPR + 8 * i as u64, g[*slot as usize] as u64);
        }
        write_u64(OUT_FLAGS, g[libc::REG_EFL as usize] as u64);
        write_u64(FAULT_SIG, sig as u64);
        write_u64(FAULT_RIP, rip);
        g[libc::REG_RIP as usize] = recover as i64;
        let csgsfs = g[libc::REG_CSGSFS as usize] as u64;
        g[libc::REG_CSGSFS as usize] = ((csgsfs & !0xffff) | USER64_CS) as i64;
        // Resume without TF, DF and AC.
        g[libc::REG_EFL as usize] &= !((1 << 8) | (1 << 10) | (1 << 18));
    }
}
