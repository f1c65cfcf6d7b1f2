//! The `ova-builder` library: packaging (descriptor + VMDK → manifest → OVA), verification,
//! and the subcommands that glue the `ovf` and `image` crates together.

pub mod appliance;
pub mod atomic;
pub mod cmd;
pub mod manifest;
pub mod ova;
pub mod package;
pub mod progress;
pub mod sign;
pub mod source_date;
pub mod spec;
pub mod verify;
