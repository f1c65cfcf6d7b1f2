//! VMware guestinfo: `guestinfo.ovfEnv` (read) and status keys (write).
//!
//! Reading tries the VMware backdoor first (no VMware Tools needed), then `vmware-rpctool`,
//! then `vmtoolsd --cmd`. Both tools print `No value found` and exit non-zero for an unset
//! key: that is "no environment", not an error.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::Command;

use super::{EnvSource, Fetched, SourceError};

/// The guestinfo key vSphere puts the OVF environment in.
pub const OVF_ENV_KEY: &str = "guestinfo.ovfEnv";

/// Reads `guestinfo.ovfEnv`.
pub struct Guestinfo {
    tools: Tools,
    /// Check the CPU is VMware's before anything (off in tests that fake the tools).
    require_vmware_cpu: bool,
    use_backdoor: bool,
}

/// The VMware Tools commands used, injectable for tests.
#[derive(Clone, Debug)]
pub struct Tools {
    pub rpctool: PathBuf,
    pub vmtoolsd: PathBuf,
}

impl Default for Tools {
    fn default() -> Self {
        Tools {
            rpctool: PathBuf::from("vmware-rpctool"),
            vmtoolsd: PathBuf::from("vmtoolsd"),
        }
    }
}

impl Guestinfo {
    /// The real thing: VMware CPU check, backdoor, then the tools.
    pub fn new() -> Self {
        Guestinfo {
            tools: Tools::default(),
            require_vmware_cpu: true,
            use_backdoor: true,
        }
    }

    /// Only the given tools, no CPU check and no backdoor (tests).
    pub fn with_tools(tools: Tools) -> Self {
        Guestinfo {
            tools,
            require_vmware_cpu: false,
            use_backdoor: false,
        }
    }
}

impl Default for Guestinfo {
    fn default() -> Self {
        Self::new()
    }
}

impl EnvSource for Guestinfo {
    fn describe(&self) -> String {
        OVF_ENV_KEY.to_owned()
    }

    fn fetch(&mut self) -> Result<Option<Fetched>, SourceError> {
        if self.require_vmware_cpu && !on_vmware() {
            return Ok(None);
        }
        let mut notes = Vec::new();
        #[cfg(target_arch = "x86_64")]
        if self.use_backdoor {
            match super::backdoor::get_guestinfo(OVF_ENV_KEY) {
                Ok(Some(bytes)) if !bytes.is_empty() => {
                    return Ok(Some(Fetched {
                        bytes,
                        description: format!("{OVF_ENV_KEY} via the VMware backdoor"),
                    }));
                }
                Ok(_) => return Ok(None),
                Err(e) => notes.push(format!("VMware backdoor: {e}")),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = self.use_backdoor;
        match rpc(&self.tools, &format!("info-get {OVF_ENV_KEY}")) {
            Ok(RpcOutcome::Value(bytes, via)) if !bytes.iter().all(u8::is_ascii_whitespace) => {
                Ok(Some(Fetched {
                    bytes,
                    description: format!("{OVF_ENV_KEY} via {via}"),
                }))
            }
            Ok(_) => Ok(None),
            Err(e) => {
                notes.push(e);
                Err(SourceError::new(self.describe(), notes.join("; ")))
            }
        }
    }
}

/// Whether this is a VMware virtual machine (CPUID hypervisor vendor `VMwareVMware`).
pub fn on_vmware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::backdoor::is_vmware()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

enum RpcOutcome {
    /// The reply and the tool that gave it.
    Value(Vec<u8>, String),
    NoValue,
}

/// Run one RPC command through `vmware-rpctool`, or `vmtoolsd --cmd` if the former is not
/// installed.
fn rpc(tools: &Tools, command: &str) -> Result<RpcOutcome, String> {
    let attempts: [(String, Command); 2] = [
        (tools.rpctool.display().to_string(), {
            let mut c = Command::new(&tools.rpctool);
            c.arg(command);
            c
        }),
        (format!("{} --cmd", tools.vmtoolsd.display()), {
            let mut c = Command::new(&tools.vmtoolsd);
            c.arg("--cmd").arg(command);
            c
        }),
    ];
    let mut missing = Vec::new();
    for (name, mut cmd) in attempts {
        let output = match cmd.output() {
            Ok(o) => o,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                missing.push(name);
                continue;
            }
            Err(e) => return Err(format!("{name}: cannot run it: {e}")),
        };
        if output.status.success() {
            return Ok(RpcOutcome::Value(output.stdout, name));
        }
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if said.contains("No value found") {
            return Ok(RpcOutcome::NoValue);
        }
        return Err(format!(
            "{name} failed ({}): {}",
            output.status,
            said.trim()
        ));
    }
    Err(format!(
        "neither {} is installed; expected open-vm-tools",
        missing.join(" nor ")
    ))
}

/// What [`publish_guestinfo`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    /// The key was set.
    Set,
    /// Not a VMware virtual machine: nothing to publish to (not an error).
    NotVmware,
}

/// Set `guestinfo.<key>` to a one-line value, so vSphere (and the administrator) can read it
/// (e.g. `appliance.firstboot.status`, `dataplaneapi.cacert`). `key` may be given with or
/// without the `guestinfo.` prefix.
///
/// Uses `vmware-rpctool "info-set guestinfo.KEY VALUE"` (or `vmtoolsd --cmd`): the value is on
/// a command line, so never publish a secret. Outside VMware this does nothing and returns
/// [`Published::NotVmware`].
pub fn publish_guestinfo(key: &str, value: &str) -> Result<Published, SourceError> {
    if !on_vmware() {
        return Ok(Published::NotVmware);
    }
    publish_with(&Tools::default(), key, value)
}

/// [`publish_guestinfo`] with given tools and no CPU check (tests).
pub fn publish_with(tools: &Tools, key: &str, value: &str) -> Result<Published, SourceError> {
    let key = key.strip_prefix("guestinfo.").unwrap_or(key);
    let full = format!("guestinfo.{key}");
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SourceError::new(
            full,
            "invalid key; expected a non-empty key without spaces",
        ));
    }
    if value.contains(['\n', '\r', '\0']) {
        return Err(SourceError::new(
            full,
            "the value has a line break or NUL; expected one line",
        ));
    }
    match rpc(tools, &format!("info-set {full} {value}")) {
        Ok(_) => Ok(Published::Set),
        Err(e) => Err(SourceError::new(full, e)),
    }
}
