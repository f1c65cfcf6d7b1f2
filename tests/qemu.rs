//! A VMware-like virtual machine in QEMU (software emulation) for the appliance boot test:
//! PVSCSI disk on a throw-away qcow2 overlay, IDE CD-ROM with the OVF environment, VmxNet3
//! NICs on the PCI buses vSphere gives slots 160/192/224 (0000:03:00.0, 0000:0b:00.0,
//! 0000:13:00.0), `restrict=on` user networking with loopback port forwards (and services QEMU
//! serves to the guest itself, which reaches nothing else), the serial console
//! in a file, and a monitor socket for an ACPI power-off. QEMU is killed by its PID when the
//! [`Vm`] is dropped, whatever happened.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::run;

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
    /// Services the guest reaches on this network (which reaches nothing else).
    pub guest_services: Vec<GuestService>,
}

/// A TCP service at `ip:port` on a user-mode network, served by QEMU itself (`guestfwd=…-cmd:`):
/// every connection the guest opens to it runs `command` in QEMU's network namespace, with the
/// connection as its stdin and stdout. `ip` must be inside the NIC's `net` and be neither its
/// `host` nor its DNS address (the third one); QEMU answers ARP for it.
pub struct GuestService {
    pub ip: &'static str,
    pub port: u16,
    /// A program and its arguments, split as a shell would (no shell runs it).
    pub command: String,
}

/// One NIC on a tap device that already exists in the network namespace QEMU runs in (the lab
/// test's switch): the guest's PCI bus number, MAC, and the tap's name.
#[allow(dead_code)] // used by lab_boot only; appliance_boot includes this file too
pub struct TapNic {
    pub bus: u8,
    pub mac: &'static str,
    pub tap: String,
}

/// Debian's OVMF (package `ovmf`).
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS; the disk on PVSCSI as the definition declares.
    Bios,
    /// OVMF. It has no PVSCSI driver: the disk is virtio-blk there (the kernel has both), and
    /// the CD-ROM on PVSCSI.
    Uefi,
}

pub struct VmSpec<'a> {
    pub firmware: Firmware,
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
    console_in: Option<UnixStream>,
    pub started: Instant,
}

/// Removes `ESC [ … letter` sequences (systemd colours its status lines).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Vm {
    /// Starts QEMU inside network namespace `netns` (`ip netns exec`), with `taps` attached
    /// after `spec.nics` (script=no: the test wires the taps itself).
    pub fn start(spec: &VmSpec, name: &str, netns: &str, taps: &[TapNic]) -> Vm {
        Vm::launch(spec, name, netns, taps)
    }

    fn launch(spec: &VmSpec, name: &str, netns: &str, taps: &[TapNic]) -> Vm {
        let overlay = spec.dir.join(format!("{name}.qcow2"));
        let serial = spec.dir.join(format!("{name}-serial.log"));
        let monitor = spec.dir.join(format!("{name}-monitor.sock"));
        let console_sock = spec.dir.join(format!("{name}-console.sock"));
        let _ = std::fs::remove_file(&console_sock);
        let _ = std::fs::remove_file(&overlay);
        let _ = std::fs::remove_file(&serial);
        let _ = std::fs::remove_file(&monitor);
        run(Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", spec.base_format, "-b"])
            .arg(spec.base)
            .arg(&overlay));

        let mut cmd = Command::new("ip");
        // `ip netns exec` execs QEMU: the child's PID is QEMU's.
        cmd.args(["netns", "exec", netns, "qemu-system-x86_64"]);
        cmd.args([
            "-accel", "tcg", "-machine", "pc", "-cpu", "max", "-smp", "2",
        ])
        .args(["-m", &spec.memory_mib.to_string()])
        .args(["-display", "none", "-no-reboot", "-nodefaults"])
        // The serial console: a socket the test types into, logged to a file it polls.
        .arg("-chardev")
        .arg(format!(
            "socket,id=ser0,path={},server=on,wait=off,logfile={}",
            console_sock.display(),
            serial.display()
        ))
        .args(["-serial", "chardev:ser0"])
        .arg("-monitor")
        .arg(format!("unix:{},server=on,wait=off", monitor.display()))
        .arg("-drive")
        .arg(format!(
            "file={},if=none,id=disk0,format=qcow2,cache=unsafe",
            overlay.display()
        ));
        add_disks(&mut cmd, spec, name);
        add_nics(&mut cmd, spec, taps);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting qemu-system-x86_64: {e}"));
        let pid = child.id();
        eprintln!("[qemu] {name}: pid {pid}: {cmd:?}");
        let mut vm = Vm {
            child: Some(child),
            pid,
            serial,
            overlay,
            monitor,
            console_in: None,
            started: Instant::now(),
        };
        vm.console_in = Some(vm.connect_console(&console_sock));
        vm
    }

    /// Connects to the console socket (bounded) and drains it on a thread: the log file keeps
    /// everything, and an unread socket would stall the guest's serial port.
    fn connect_console(&mut self, sock: &Path) -> UnixStream {
        let start = Instant::now();
        loop {
            if let Ok(stream) = UnixStream::connect(sock) {
                let mut reader = stream.try_clone().unwrap();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
                });
                return stream;
            }
            if let Some(status) = self.exited() {
                panic!("QEMU exited at start ({status})");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no QEMU console socket at {}",
                sock.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `text` on the serial console.
    pub fn type_text(&mut self, text: &str) {
        let stream = self.console_in.as_mut().expect("console connected");
        stream.write_all(text.as_bytes()).unwrap();
    }

    /// Logs in on the serial console (after its `login:` prompt) and waits for a root shell.
    pub fn login(&mut self, user: &str, password: &str, limit: Duration) {
        self.wait_for(&["login:"], limit, "login prompt");
        let mark = self.console().len();
        self.type_text(&format!("{user}\n"));
        self.wait_for_after(
            mark,
            &["Password:"],
            Duration::from_secs(60),
            "password prompt",
        );
        let mark = self.console().len();
        self.type_text(&format!("{password}\n"));
        let seen = self.wait_for_after(
            mark,
            &["# ", "Login incorrect"],
            Duration::from_secs(60),
            "shell prompt",
        );
        assert_eq!(
            seen,
            "# ",
            "console login as {user} failed:\n{}",
            self.tail()
        );
    }

    /// Runs `command` in the logged-in console shell; returns its output and exit status.
    pub fn shell(&mut self, command: &str, limit: Duration) -> (String, i32) {
        let mark = self.console().len();
        // The marker is split in the typed line so that its echo does not match.
        self.type_text(&format!("{command}; echo \"@@DONE\"\"-$?@@\"\n"));
        self.wait_for_after(mark, &["@@DONE-"], limit, command);
        std::thread::sleep(Duration::from_millis(300));
        let console = self.console();
        let out = &console[mark.min(console.len())..];
        let end = out.find("@@DONE-").unwrap_or(out.len());
        let status = out[end..]
            .trim_start_matches("@@DONE-")
            .split("@@")
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(-1);
        // Drop the echoed command line.
        let body = out[..end].split_once('\n').map(|x| x.1).unwrap_or("");
        (body.replace('\r', ""), status)
    }

    /// The serial console so far, without terminal colour sequences.
    pub fn console(&self) -> String {
        let bytes = std::fs::read(&self.serial).unwrap_or_default();
        strip_ansi(&String::from_utf8_lossy(&bytes))
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
        self.wait_for_after(0, wanted, limit, what)
    }

    /// As [`Vm::wait_for`], looking at the console after its first `mark` bytes only.
    pub fn wait_for_after(
        &mut self,
        mark: usize,
        wanted: &[&str],
        limit: Duration,
        what: &str,
    ) -> String {
        let start = Instant::now();
        loop {
            let console = self.console();
            let recent = console.get(mark..).unwrap_or("");
            if let Some(w) = wanted.iter().find(|w| recent.contains(**w)) {
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

/// The system disk (on PVSCSI under SeaBIOS, virtio under OVMF, as each boots it) and the
/// OVF environment CD-ROM.
fn add_disks(cmd: &mut Command, spec: &VmSpec, name: &str) {
    match spec.firmware {
        Firmware::Bios => {
            cmd.args(["-device", "pvscsi,id=scsi0"])
                .args(["-device", "scsi-hd,drive=disk0,bus=scsi0.0,bootindex=0"]);
        }
        Firmware::Uefi => {
            let vars = spec.dir.join(format!("{name}-OVMF_VARS.fd"));
            std::fs::copy(OVMF_VARS, &vars).unwrap_or_else(|e| panic!("copying {OVMF_VARS}: {e}"));
            cmd.arg("-drive")
                .arg(format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"))
                .arg("-drive")
                .arg(format!("if=pflash,format=raw,file={}", vars.display()))
                .args([
                    "-device",
                    "virtio-blk-pci,drive=disk0,bus=pci.0,bootindex=0",
                ]);
        }
    }
    if let Some(iso) = spec.env_iso {
        cmd.arg("-drive").arg(format!(
            "file={},if=none,id=cd0,media=cdrom,format=raw,readonly=on",
            iso.display()
        ));
        match spec.firmware {
            Firmware::Bios => {
                cmd.args(["-device", "ide-cd,drive=cd0,bus=ide.1"]);
            }
            // Linux does not reliably find an IDE CD-ROM under OVMF on `-machine pc`;
            // the kernel's PVSCSI driver finds it there.
            Firmware::Uefi => {
                cmd.args(["-device", "pvscsi,id=scsi1"])
                    .args(["-device", "scsi-cd,drive=cd0,bus=scsi1.0"]);
            }
        }
    }
}

/// `spec.nics` (user networking with forwards) then `taps`, each a VMXNET3 NIC at the PCI
/// bus vSphere's slot maps to.
fn add_nics(cmd: &mut Command, spec: &VmSpec, taps: &[TapNic]) {
    for (i, nic) in spec.nics.iter().enumerate() {
        // A PCI expander bridge numbered one below the bus vSphere's slot maps to: QEMU puts
        // a PCI bridge behind it whose secondary bus is `nic.bus`, and the NIC is device 0
        // there, so udev's path is pci-0000:BB:00.0 as on vSphere (behind a root port).
        cmd.arg("-device")
            .arg(format!("pxb,id=pxb{i},bus_nr={},bus=pci.0", nic.bus - 1));
        let mut netdev = format!(
            "user,id=net{i},net={},host={},restrict=on,ipv6=off",
            nic.net, nic.host
        );
        for (hp, ip, gp) in &nic.forwards {
            netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{hp}-{ip}:{gp}"));
        }
        for svc in &nic.guest_services {
            // A comma in an option's value is written twice.
            netdev.push_str(&format!(
                ",guestfwd=tcp:{}:{}-cmd:{}",
                svc.ip,
                svc.port,
                svc.command.replace(',', ",,")
            ));
        }
        cmd.arg("-netdev").arg(netdev);
        cmd.arg("-device").arg(format!(
            "vmxnet3,netdev=net{i},mac={},bus=pxb{i},addr=0x0,romfile=",
            nic.mac
        ));
    }
    for (i, nic) in taps.iter().enumerate() {
        let i = i + spec.nics.len();
        cmd.arg("-device")
            .arg(format!("pxb,id=pxb{i},bus_nr={},bus=pci.0", nic.bus - 1));
        cmd.arg("-netdev").arg(format!(
            "tap,id=net{i},ifname={},script=no,downscript=no",
            nic.tap
        ));
        cmd.arg("-device").arg(format!(
            "vmxnet3,netdev=net{i},mac={},bus=pxb{i},addr=0x0,romfile=",
            nic.mac
        ));
    }
}
