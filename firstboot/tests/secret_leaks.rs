//! No output channel ever shows any part of a secret property's value: for every secret of the
//! appliance definition × every failure mode that could quote the value × every channel
//! (stdout/stderr of `check` and `apply`, `status.json` under `--root`, the guestinfo status
//! value as `vmware-rpctool` receives it).
//!
//! "Part" means any 6-character window of the secret text; the fixed PEM framing
//! (`-----BEGIN PRIVATE KEY-----`) is public vocabulary and not counted, the markers, key body
//! and password text are.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod env_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use env_support::*;
use firstboot::config::Deployment;
use firstboot::load::{LoadOptions, load_bytes};
use firstboot::source::STATUS_KEY;
use firstboot::source::guestinfo::{Tools, publish_with};

/// Recognisable text put into every secret value. No 6-character part of it may occur in a
/// property key (`ha.shared_secret` has "secret").
const MARK: &str = "Zq7hushedMARK";
const MARK_UPPER: &str = "ZQSECRETLABELMARK";
/// Stands for the secret's value in the document; replaced by raw (unescaped) XML text.
const SLOT: &str = "SLOT-OF-THE-SECRET-VALUE";

/// One way a secret value can be wrong (or right).
struct Mode {
    name: &'static str,
    /// The value as it appears inside the XML attribute, unescaped (may break the XML).
    raw_xml: String,
    /// The texts no output may show any 6-character part of.
    secret_parts: Vec<String>,
    /// The value appears twice in the document.
    duplicate: bool,
}

fn mode(name: &'static str, raw_xml: String, secret_parts: &[&str]) -> Mode {
    Mode {
        name,
        raw_xml,
        secret_parts: secret_parts.iter().map(|s| (*s).to_owned()).collect(),
        duplicate: false,
    }
}

/// XML-escape for attribute values (the modes that keep the document well-formed).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
        .replace('\n', "&#10;")
        .replace('\t', "&#9;")
}

// A table of failure modes, one entry each: splitting it would scatter the table.
#[allow(clippy::too_many_lines)]
fn modes(key_body: &str, other_key_body: &str) -> Vec<Mode> {
    let pem = |begin: &str, body: &str, end: &str| format!("{begin}\n{body}\n{end}");
    let b = key_body;
    let damaged_begin = pem("-----BEGIN PRIVATE KEY", b, "-----END PRIVATE KEY-----");
    let marked_body = format!("{MARK}{b}");
    let b64_of_damaged = STANDARD.encode(damaged_begin.as_bytes());
    let mut v = vec![
        mode("too short", esc("Zq7s!"), &["Zq7s!"]),
        mode("too long", esc(&MARK.repeat(12)), &[&MARK.repeat(12)]),
        mode(
            "control character",
            esc(&format!("{MARK}\u{1}{MARK}")),
            &[MARK],
        ),
        mode("tab", esc(&format!("{MARK}\t{MARK}")), &[MARK]),
        mode("XML unknown entity", format!("ab&{MARK};cd"), &[MARK]),
        mode("XML entity without ;", format!("{MARK}&{MARK}"), &[MARK]),
        mode(
            "XML bad character reference",
            format!("{MARK}&#x{MARK};"),
            &[MARK],
        ),
        mode("XML raw <", format!("{MARK}<{MARK}"), &[MARK]),
        mode("XML literal line break", format!("{MARK}\n{MARK}"), &[MARK]),
        mode("PEM damaged BEGIN line", esc(&damaged_begin), &[b]),
        mode(
            "PEM damaged BEGIN line, marker",
            esc(&pem(
                "-----BEGIN PRIVATE KEY",
                &marked_body,
                "-----END PRIVATE KEY-----",
            )),
            &[&marked_body],
        ),
        mode(
            "PEM damaged END line",
            esc(&pem(
                "-----BEGIN PRIVATE KEY-----",
                b,
                "-----END PRIVATE KEY",
            )),
            &[b],
        ),
        mode(
            "PEM END line with four dashes",
            esc(&pem(
                "-----BEGIN PRIVATE KEY-----",
                b,
                "----END PRIVATE KEY-----",
            )),
            &[b],
        ),
        mode(
            "PEM bad base64",
            esc(&pem(
                "-----BEGIN PRIVATE KEY-----",
                &format!("{MARK}!!{b}"),
                "-----END PRIVATE KEY-----",
            )),
            &[MARK, b],
        ),
        mode(
            "PEM unknown label (lower case marker)",
            esc(&pem(
                &format!("-----BEGIN {MARK} KEY-----"),
                b,
                &format!("-----END {MARK} KEY-----"),
            )),
            &[MARK, b],
        ),
        mode(
            "PEM unknown label (upper case marker)",
            esc(&pem(
                &format!("-----BEGIN {MARK_UPPER}-----"),
                b,
                &format!("-----END {MARK_UPPER}-----"),
            )),
            &[MARK_UPPER, b],
        ),
        mode(
            "PEM wrong block type",
            esc(&pem(
                "-----BEGIN CERTIFICATE-----",
                b,
                "-----END CERTIFICATE-----",
            )),
            &[b],
        ),
        mode(
            "PEM body is not a key",
            esc(&pem(
                "-----BEGIN PRIVATE KEY-----",
                &STANDARD.encode(MARK.repeat(8)),
                "-----END PRIVATE KEY-----",
            )),
            &[&STANDARD.encode(MARK.repeat(8))],
        ),
        mode(
            "PEM key of another certificate",
            esc(&pem(
                "-----BEGIN PRIVATE KEY-----",
                other_key_body,
                "-----END PRIVATE KEY-----",
            )),
            &[other_key_body],
        ),
        mode(
            "PEM encrypted headers",
            esc(&pem(
                "-----BEGIN RSA PRIVATE KEY-----",
                &format!("Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{MARK}\n\n{b}"),
                "-----END RSA PRIVATE KEY-----",
            )),
            &[MARK, b],
        ),
        mode(
            "base64 of a damaged PEM",
            esc(&b64_of_damaged),
            &[&b64_of_damaged, b],
        ),
        mode("not PEM at all", esc(&format!("{MARK} just text")), &[MARK]),
    ];
    v.push(Mode {
        duplicate: true,
        ..mode("duplicate", esc(&format!("{MARK}-dup")), &[MARK])
    });
    v
}

/// The base64 body of a PEM text, one line.
fn body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

/// Every 6-character window of `secret` found in `output`.
fn leaks(output: &str, secret: &str) -> Vec<String> {
    let chars: Vec<char> = secret.chars().filter(|c| !c.is_whitespace()).collect();
    chars
        .windows(6)
        .map(|w| w.iter().collect::<String>())
        .filter(|w| output.contains(w.as_str()))
        .collect()
}

/// A fake `vmware-rpctool` that appends its command line to `log`.
fn fake_rpctool(dir: &Path, log: &Path) -> Tools {
    let path = dir.join("vmware-rpctool");
    std::fs::write(
        &path,
        format!("#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    Tools {
        rpctool: path,
        vmtoolsd: dir.join("no-vmtoolsd"),
    }
}

/// Everything the program shows for this document, channel by channel.
fn outputs(dir: &Path, document: &str) -> Vec<(&'static str, String)> {
    let env = dir.join("env.xml");
    std::fs::write(&env, document).unwrap();
    let bin = env!("CARGO_BIN_EXE_haproxy-firstboot");
    let check = Command::new(bin)
        .args(["check", "--deployment", "default", "--env"])
        .arg(&env)
        .output()
        .unwrap();
    let root = dir.join("root");
    let apply = Command::new(bin)
        .args(["apply", "--deployment", "default", "--env"])
        .arg(&env)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut out = vec![
        ("check exit status", format!("{:?}", check.status.code())),
        ("check stdout", text(&check.stdout)),
        ("check stderr", text(&check.stderr)),
        ("apply stdout", text(&apply.stdout)),
        ("apply stderr", text(&apply.stderr)),
        (
            "status.json",
            std::fs::read_to_string(root.join(firstboot::apply::STATUS)).unwrap_or_default(),
        ),
    ];
    // The guestinfo status as `check --publish-status` and `apply` publish it.
    let options = LoadOptions {
        deployment: Some(Deployment::Default),
        ..LoadOptions::default()
    };
    let status = match load_bytes(document.as_bytes().to_vec(), "test".into(), &options) {
        Ok(_) => "valid configuration (default deployment)".to_owned(),
        Err(e) => e.status_line(),
    };
    let log = dir.join("rpctool.log");
    publish_with(&fake_rpctool(dir, &log), STATUS_KEY, &status).unwrap();
    out.push((
        "guestinfo status (vmware-rpctool command line)",
        std::fs::read_to_string(&log).unwrap(),
    ));
    out
}

#[test]
fn no_channel_shows_any_part_of_a_secret_value() {
    let def = firstboot::definition::appliance();
    let secrets: Vec<&str> = def.secret_keys().collect();
    assert!(secrets.len() >= 3, "{secrets:?}");
    let ca = ec_ca("Leak Test CA");
    let other = ec_ca("Another CA");
    let ca_key_body = body(&ca.key_pkcs8_pem());
    let valid = with(
        base(),
        &[
            ("appliance.ca_cert", Some(&ca.cert_pem())),
            ("appliance.ca_cert_key", Some(&ca.key_pkcs8_pem())),
        ],
    );
    let mut failures = Vec::new();
    let mut runs = 0;
    for key in &secrets {
        for m in modes(&ca_key_body, &body(&other.key_pkcs8_pem())) {
            let props = with(valid.clone(), &[(key, Some(SLOT))]);
            let mut document = doc(&props, Some(2));
            if m.duplicate {
                let line = format!(r#"<Property oe:key="{key}" oe:value="{SLOT}"/>"#);
                assert!(document.contains(&line), "{document}");
                document = document.replace(&line, &format!("{line}{line}"));
            }
            let document = document.replace(SLOT, &m.raw_xml);
            let dir = tempfile::tempdir().unwrap();
            runs += 1;
            let channels = outputs(dir.path(), &document);
            // Not well-formed XML is exit status 2 (no usable document), not 1.
            if m.name.starts_with("XML") && m.name != "XML literal line break" {
                assert_eq!(channels[0].1, "Some(2)", "{key} / {}", m.name);
            }
            for (channel, text) in channels {
                for part in &m.secret_parts {
                    let found = leaks(&text, part);
                    if !found.is_empty() {
                        failures.push(format!(
                            "{key} / {}: {channel} shows {:?}… ({} windows):\n{}",
                            m.name,
                            &found[0],
                            found.len(),
                            text.chars().take(600).collect::<String>()
                        ));
                        break;
                    }
                }
            }
        }
    }
    assert!(runs >= 60, "{runs} runs");
    assert!(
        failures.is_empty(),
        "{} leaks:\n{}",
        failures.len(),
        failures.join("\n---\n")
    );
}
