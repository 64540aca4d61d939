//! Exceptions taken from EL0 (installed with `exception::set_user_handler`): syscalls,
//! copy-on-write write faults (ESR EC 0x24, permission fault, write), IRQs (the timer
//! tick: the scheduler's preemption), and everything else a process can do wrong, which
//! kills it with a message while the kernel runs on.

use super::cow_fault::{self, WriteFaultError};
use super::syscall::{self, kill_current};
use super::{current_slot, snapshot};
use crate::arch::aarch64::exception::{self, Esr, TrapFrame, Vector};

/// Installs the EL0 and EL1 hooks of the process layer.
pub fn install() {
    exception::set_user_handler(user_trap);
    exception::set_kernel_fault_handler(super::uaccess::kernel_fault);
    exception::set_kernel_irq_handler(super::scheduler::kernel_interrupt);
    exception::set_event_hook(arch_event);
}

/// The architecture's events, raised as the debugger contract's.
fn arch_event(event: exception::ArchEvent, a: u64, b: u64) {
    let kind = match event {
        exception::ArchEvent::FaultRecovered => crate::debug::EVENT_FAULT_RECOVERED,
        exception::ArchEvent::Halt => crate::debug::EVENT_HALT,
    };
    crate::debug::tinyos_debug_event(kind, a, b);
}

fn user_trap(frame: &mut TrapFrame, vector: Vector) -> *mut TrapFrame {
    let Some(slot) = current_slot() else {
        exception::unexpected(frame, vector);
    };
    if vector == Vector::LOWER_IRQ {
        return super::scheduler::interrupt(slot, frame);
    }
    if !vector.is_sync() {
        // No FIQ or SError source is enabled; resume.
        return frame;
    }
    let esr = Esr(frame.esr);
    match esr.ec() {
        Esr::EC_SVC64 => {
            let next = syscall::dispatch(slot, frame);
            // The time slice restarts at every syscall return: a tick that fell due while
            // the kernel worked (a fork copies tables for a while) would otherwise preempt
            // the process at its first instruction back, between two steps the stepwise
            // test programs expect to run together (fork, then read the page's count).
            // Processes are still preempted anywhere after a full tick of user code.
            crate::arch::aarch64::timer::start();
            next
        }
        Esr::EC_DABT_LOWER if esr.is_write() && esr.is_permission_fault() => {
            let p = snapshot(slot);
            match cow_fault::handle_write_fault(p.pid, &p.space(), frame.far) {
                Ok(_) => frame,
                Err(err) => kill_for(slot, frame, err),
            }
        }
        _ => {
            let (far, elr) = (frame.far, frame.elr);
            let what = esr.fault_name().unwrap_or_else(|| esr.class_name());
            crate::println!(
                "process {}: {} ({}) ESR=0x{:x} FAR=0x{far:x} ELR=0x{elr:x}",
                snapshot(slot).pid,
                esr.class_name(),
                what,
                frame.esr
            );
            kill_current(slot, what)
        }
    }
}

fn kill_for(slot: usize, frame: &TrapFrame, err: WriteFaultError) -> *mut TrapFrame {
    let region = super::user::region_name(frame.far);
    crate::println!(
        "process {}: write to 0x{:x} ({region}) at ELR=0x{:x}: {}",
        snapshot(slot).pid,
        frame.far,
        frame.elr,
        err.reason()
    );
    kill_current(slot, err.reason())
}
