//! The VMware backdoor (x86-64 only): read a guestinfo key without VMware Tools.

/// Whether the CPU identifies itself as a VMware virtual CPU (CPUID hypervisor leaf).
pub fn is_vmware() -> bool {
    vmw_backdoor::is_vmware_cpu()
}

/// Read `guestinfo.<key>` through the backdoor's enhanced RPC channel. `Ok(None)`: no value.
///
/// Needs `CAP_SYS_RAWIO` (the unit runs as root); call only after [`is_vmware`] is true, as
/// the backdoor I/O port faults elsewhere.
pub fn get_guestinfo(key: &str) -> Result<Option<Vec<u8>>, String> {
    let mut guard = vmw_backdoor::probe_backdoor_privileged().map_err(|e| e.to_string())?;
    let mut chan = guard.open_enhanced_chan().map_err(|e| e.to_string())?;
    chan.get_guestinfo(key.as_bytes())
        .map_err(|e| e.to_string())
}
