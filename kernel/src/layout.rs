//! The line format and the `fields!` helper of the struct-layout report: one line per
//! type and field, computed by the compiler (`size_of`/`align_of`/`offset_of!`), so the
//! debugger's DWARF decoder can be checked against the running kernel. Each module
//! describes its own types; the `layout` shell command (shell/commands/layout.rs) puts
//! the report together, so this module knows none of them.

use core::fmt;

/// One line of the report.
pub enum Line {
    /// `layout <Type> size=<n> align=<n>`
    Type { name: &'static str, size: usize, align: usize },
    /// `layout <Type>.<field> offset=<n> size=<n>`
    Field { ty: &'static str, field: &'static str, offset: usize, size: usize },
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Type { name, size, align } => write!(f, "layout {name} size={size} align={align}"),
            Line::Field { ty, field, offset, size } => write!(f, "layout {ty}.{field} offset={offset} size={size}"),
        }
    }
}

/// The size of the pointee of a field projection (works for private fields when the
/// projection is written inside the owning module).
pub fn field_size<T, F>(_: fn(*const T) -> *const F) -> usize {
    core::mem::size_of::<F>()
}

/// Emits the type line and one line per listed field: `fields!(out, Type, a, b, c)`.
macro_rules! fields {
    ($out:expr, $ty:ident, $($field:ident),+ $(,)?) => {{
        $out($crate::layout::Line::Type {
            name: stringify!($ty),
            size: core::mem::size_of::<$ty>(),
            align: core::mem::align_of::<$ty>(),
        });
        $(
            $out($crate::layout::Line::Field {
                ty: stringify!($ty),
                field: stringify!($field),
                offset: core::mem::offset_of!($ty, $field),
                // SAFETY: only a place projection, never a read.
                size: $crate::layout::field_size(|v: *const $ty| unsafe { &raw const (*v).$field }),
            });
        )+
    }};
}
pub(crate) use fields;
