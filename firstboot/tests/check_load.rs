//! The shared `load` API used by `check` and `apply`.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod env_support;

use env_support::*;
use firstboot::config::Deployment;
use firstboot::deployment::SysRoot;
use firstboot::load::{LoadOptions, load_bytes, one_line};
use firstboot::source::Transport;
use firstboot::{LoadError, load};

fn options(dir: &std::path::Path, deployment: Option<Deployment>) -> LoadOptions {
    LoadOptions {
        transport: Transport::Auto,
        deployment,
        sys_root: SysRoot(dir.to_path_buf()),
    }
}

#[test]
fn a_valid_document_loads_with_digest_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let xml = doc(&base(), Some(2));
    let path = dir.path().join("env.xml");
    std::fs::write(&path, &xml).unwrap();
    let loaded = load(&LoadOptions {
        transport: Transport::File(path.clone()),
        ..options(dir.path(), None)
    })
    .unwrap();
    assert_eq!(loaded.raw, xml.as_bytes());
    assert_eq!(loaded.digest.len(), 64);
    assert_eq!(loaded.source, format!("file {}", path.display()));
    assert_eq!(loaded.config.deployment(), Deployment::Default);
    assert_eq!(loaded.environment.adapter_count(), Some(2));
}

#[test]
fn errors_carry_their_exit_status_and_a_one_line_status() {
    let dir = tempfile::tempdir().unwrap();
    let props = with(
        base(),
        &[
            ("loadbalance.dataplane_port", Some("22")),
            ("appliance.root_pwd", Some("x")),
        ],
    );
    let err = load_bytes(
        doc(&props, None).into_bytes(),
        "test".into(),
        &options(dir.path(), None),
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), 1);
    let LoadError::Invalid {
        invalid,
        deployment,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(invalid.problems.len(), 2);
    assert_eq!(*deployment, Deployment::Default);
    let status = err.status_line();
    assert!(!status.contains('\n'));
    assert_eq!(
        status,
        "invalid configuration: Root Password (appliance.root_pwd): is 1 character long; expected 6 to 128 characters (and 1 more; see the console or journal)"
    );

    let err = load_bytes(
        b"<Environment".to_vec(),
        "test".into(),
        &options(dir.path(), None),
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.status_line()
            .starts_with("error: the OVF environment from test is unusable: not well-formed XML"),
        "{}",
        err.status_line()
    );

    let err = load(&LoadOptions {
        transport: Transport::File(dir.path().join("missing")),
        ..options(dir.path(), None)
    })
    .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(matches!(err, LoadError::Unreadable(_)));
    assert_eq!(one_line("a\n  b\tc"), "a b c");
}
