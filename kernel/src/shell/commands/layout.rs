//! `layout`: the compiler's sizes, alignments and field offsets of the structs the
//! debugger decodes, so the DWARF decoder can be checked against the running kernel.
//! The report is put together here (the only place that knows every type listed); each
//! module describes its own types with `crate::layout::fields!`.

use super::Command;
use crate::println;

pub const COMMANDS: &[Command] = &[Command {
    name: "layout",
    description: "sizes and field offsets of the structs the debugger decodes",
    run: layout,
}];

fn layout(_args: &str) {
    report(&mut |line| println!("{line}"));
}

/// Every layout the kernel reports, in order (also printed by `tinyos_layout_info`).
pub fn report(out: &mut dyn FnMut(crate::layout::Line)) {
    crate::memory::frame::layout(out);
    crate::arch::aarch64::exception::layout(out);
    crate::arch::aarch64::context::layout(out);
    cow_layout(out);
    crate::process::layout(out);
}

/// Layouts of the copy-on-write types (for the `layout` command).
fn cow_layout(out: &mut dyn FnMut(crate::layout::Line)) {
    use crate::layout::{Line, fields};
    use crate::memory::cow::{CowManager, CowPage, CowStatistics, RegionType, SimpleVec};
    use crate::sync::SpinLock;
    use core::mem::{align_of, size_of};
    type Lock = SpinLock<CowManager>;
    out(Line::Type { name: "SpinLock<CowManager>", size: size_of::<Lock>(), align: align_of::<Lock>() });
    out(Line::Field { ty: "SpinLock<CowManager>", field: "locked", offset: Lock::LOCKED_OFFSET, size: 1 });
    let data = Lock::DATA_OFFSET;
    out(Line::Field { ty: "SpinLock<CowManager>", field: "data", offset: data, size: size_of::<CowManager>() });
    fields!(out, CowManager, cow_pages, active_pages, statistics, memory_manager, next_process_id);
    out(Line::Type { name: "Option<CowPage>", size: size_of::<Option<CowPage>>(), align: align_of::<Option<CowPage>>() });
    fields!(out, CowPage, physical_addr, ref_count, is_cow, original_permissions, virtual_addresses, process_ids);
    macro_rules! simple_vec {
        ($name:literal, $ty:ty) => {{
            out(Line::Type { name: $name, size: size_of::<$ty>(), align: align_of::<$ty>() });
            let data = core::mem::offset_of!($ty, data);
            let len = core::mem::offset_of!($ty, len);
            out(Line::Field { ty: $name, field: "data", offset: data, size: size_of::<[u64; 8]>() });
            out(Line::Field { ty: $name, field: "len", offset: len, size: size_of::<usize>() });
        }};
    }
    simple_vec!("SimpleVec<u64>", SimpleVec<u64>);
    simple_vec!("SimpleVec<usize>", SimpleVec<usize>);
    fields!(
        out,
        CowStatistics,
        cow_pages_count,
        cow_faults_handled,
        pages_duplicated,
        memory_saved_bytes,
        metadata_memory_bytes,
        peak_cow_pages
    );
    out(Line::Type { name: "RegionType", size: size_of::<RegionType>(), align: align_of::<RegionType>() });
}
