//! The `ova-builder` library: packaging (descriptor + VMDK → manifest → OVA), verification,
//! and the subcommands that glue the `ovf` and `image` crates together.

pub mod cmd;
