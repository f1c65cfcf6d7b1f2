//! A VMware-like virtual machine in QEMU (software emulation) for the appliance boot test:
//! PVSCSI disk on a throw-away qcow2 overlay, IDE CD-ROM with the OVF environment, VmxNet3
//! NICs on the PCI buses vSphere gives slots 160/192/224 (0000:03:00.0, 0000:0b:00.0,
//! 0000:13:00.0), `restrict=on` user networking with loopback port forwards, the serial console
//! in a file, and a monitor socket for an ACPI power-off. QEMU is killed by its PID when the
//! [`Vm`] is dropped, whatever happened.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Console lines after which waiting longer is pointless.
pub const FATAL: &[&str] = &[
    "Kernel panic",
    "emergency mode",
    "ALERT!",
    "Give root password for maintenance",
    "No bootable device",
    "Boot failed",
];

/// One NIC: the guest's PCI bus number, MAC, and the slirp network it sits on.
pub struct Nic {
    pub bus: u8,
    pub mac: &'static str,
    /// slirp `net=` (the guest's subnet) and `host=` (the gateway address slirp answers on).
    pub net: &'static str,
    pub host: &'static str,
    /// (host port on 127.0.0.1, guest IP, guest port)
    pub forwards: Vec<(u16, String, u16)>,
}

pub struct VmSpec<'a> {
    pub dir: &'a Path,
    /// The appliance disk (raw or VMDK); never written: an overlay takes the writes.
    pub base: &'a Path,
    pub base_format: &'a str,
    pub env_iso: Option<&'a Path>,
    pub nics: Vec<Nic>,
    pub memory_mib: u32,
}

pub struct Vm {
    child: Option<Child>,
    pub pid: u32,
    pub serial: PathBuf,
    pub overlay: PathBuf,
    monitor: PathBuf,
    pub started: Instant,
}

/// A free TCP port on 127.0.0.1 (bound and released; QEMU binds it right after).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Vm {
    pub fn start(spec: &VmSpec, name: &str) -> Vm {
        let overlay = spec.dir.join(format!("{name}.qcow2"));
        let serial = spec.dir.join(format!("{name}-serial.log"));
        let monitor = spec.dir.join(format!("{name}-monitor.sock"));
        let _ = std::fs::remove_file(&overlay);
        let _ = std::fs::remove_file(&serial);
        let _ = std::fs::remove_file(&monitor);
        run(Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", spec.base_format, "-b"])
            .arg(spec.base)
            .arg(&overlay));

        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-accel", "tcg", "-machine", "pc", "-cpu", "max", "-smp", "2",
        ])
        .args(["-m", &spec.memory_mib.to_string()])
        .args(["-display", "none", "-no-reboot", "-nodefaults"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .arg("-monitor")
        .arg(format!("unix:{},server=on,wait=off", monitor.display()))
        .args(["-device", "pvscsi,id=scsi0"])
        .arg("-drive")
        .arg(format!(
            "file={},if=none,id=disk0,format=qcow2,cache=unsafe",
            overlay.display()
        ))
        .args(["-device", "scsi-hd,drive=disk0,bus=scsi0.0,bootindex=0"]);
        if let Some(iso) = spec.env_iso {
            cmd.arg("-drive")
                .arg(format!(
                    "file={},if=none,id=cd0,media=cdrom,format=raw,readonly=on",
                    iso.display()
                ))
                .args(["-device", "ide-cd,drive=cd0,bus=ide.1"]);
        }
        for (i, nic) in spec.nics.iter().enumerate() {
            // A PCI expander bridge whose root bus has the number vSphere's slot maps to; the
            // NIC is device 0 on it, so udev's path is pci-0000:BB:00.0 as on vSphere.
            cmd.arg("-device")
                .arg(format!("pxb,id=pxb{i},bus_nr={},bus=pci.0", nic.bus));
            let mut netdev = format!(
                "user,id=net{i},net={},host={},restrict=on,ipv6=off",
                nic.net, nic.host
            );
            for (hp, ip, gp) in &nic.forwards {
                netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{hp}-{ip}:{gp}"));
            }
            cmd.arg("-netdev").arg(netdev);
            cmd.arg("-device").arg(format!(
                "vmxnet3,netdev=net{i},mac={},bus=pxb{i},addr=0x0,romfile=",
                nic.mac
            ));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting qemu-system-x86_64: {e}"));
        let pid = child.id();
        eprintln!("[qemu] {name}: pid {pid}: {cmd:?}");
        Vm {
            child: Some(child),
            pid,
            serial,
            overlay,
            monitor,
            started: Instant::now(),
        }
    }

    pub fn console(&self) -> String {
        std::fs::read(&self.serial)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn tail(&self) -> String {
        let c = self.console();
        let lines: Vec<&str> = c.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Whether QEMU has exited (and its stderr then).
    fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                Some(format!("{status}: {err}"))
            }
            _ => None,
        }
    }

    /// Waits until the console shows one of `wanted` (returns it) or fails: a fatal line, QEMU
    /// gone, or `limit` passed.
    pub fn wait_for(&mut self, wanted: &[&str], limit: Duration, what: &str) -> String {
        let start = Instant::now();
        loop {
            let console = self.console();
            if let Some(w) = wanted.iter().find(|w| console.contains(**w)) {
                return (*w).to_owned();
            }
            if let Some(f) = FATAL.iter().find(|f| console.contains(**f)) {
                panic!("{what}: the console shows {f:?}:\n{}", self.tail());
            }
            if let Some(status) = self.exited() {
                panic!(
                    "{what}: QEMU exited ({status}) before {wanted:?}:\n{}",
                    self.tail()
                );
            }
            if start.elapsed() > limit {
                panic!(
                    "{what}: no {wanted:?} on the console within {limit:?}:\n{}",
                    self.tail()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// ACPI power button through the monitor, then waits for QEMU to exit (kills it after `limit`).
    /// Returns whether the guest powered off by itself.
    pub fn power_off(&mut self, limit: Duration) -> bool {
        if let Ok(mut s) = UnixStream::connect(&self.monitor) {
            let _ = s.write_all(b"system_powerdown\n");
        }
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.exited().is_some() {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        self.kill();
        false
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Child::kill sends SIGKILL to this PID only.
            if child.kill().is_ok() {
                eprintln!("[qemu] killed pid {}", self.pid);
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}
