//! The server serves and is tested against `dataplane/spec/dataplaneapi-v2.yaml`: it must be
//! the contract the project was given (`../shared/specs/`), byte for byte.

#[test]
fn the_served_specification_is_the_shared_contract() {
    let ours = testkit::workspace().join("dataplane/spec/dataplaneapi-v2.yaml");
    let shared = testkit::workspace().join("../shared/specs/dataplaneapi-v2.yaml");
    if !shared.is_file() {
        testkit::unmet(&format!(
            "{} not found (the shared folder beside the repository)",
            shared.display()
        ));
        return;
    }
    let (a, b) = (
        std::fs::read(&ours).expect("our copy"),
        std::fs::read(&shared).expect("the shared spec"),
    );
    assert!(
        a == b,
        "{} differs from {}: copy the shared one",
        ours.display(),
        shared.display()
    );
}
