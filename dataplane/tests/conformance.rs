//! Conformance to the spec: schemathesis (pinned in `scripts/deps/dataplane.pip`) generates
//! requests from `spec/dataplaneapi-v2.yaml` for every operation the server implements and checks
//! each answer: no 5xx, the status code and content type documented, the body valid against the
//! response schema. Over TLS verified against the test CA, with the userlist's credentials.
//!
//! Random names and versions would only ever meet 404 and 409, so the configuration has
//! fixtures ([`OBJECTS`]) and requests take parent and object names from them most of the time
//! (dictionaries of the schemathesis configuration, and hooks for its coverage phase). Two runs:
//! - objects (frontends, backends, servers, binds: list, create, get, replace, delete), writing
//!   into one open transaction (`transaction_id` drawn from it most of the time);
//! - everything else: info, specification, version, raw, transactions (one more open transaction
//!   for `…/transactions/{id}`), reloads.
//!
//! Between the two, the first transaction is committed (whatever it holds, haproxy refuses it or
//! not, the answer must not be a 5xx); at the end haproxy must accept the configuration file.

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Appliance, PASSWORD, USER};

/// Test cases per operation in the fuzzing phase (the coverage phase adds its own, bounded by
/// the schemas).
const MAX_EXAMPLES: u32 = 50;
/// Fixed, so that a failure can be replayed.
const SEED: u64 = 20_260_101;
/// Longest a run may take before the test kills it and fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

const CFG: &str = "/services/haproxy/configuration";

/// The operations of the first run (paths under the spec's basePath, every method of each).
fn object_paths() -> Vec<String> {
    ["frontends", "backends", "servers", "binds"]
        .iter()
        .flat_map(|o| [format!("{CFG}/{o}"), format!("{CFG}/{o}/{{name}}")])
        .collect()
}

/// The operations of the second run.
fn other_paths() -> Vec<String> {
    [
        "/info",
        "/specification",
        "/services/haproxy/configuration/version",
        "/services/haproxy/configuration/raw",
        "/services/haproxy/transactions",
        "/services/haproxy/transactions/{id}",
        "/services/haproxy/reloads",
        "/services/haproxy/reloads/{id}",
    ]
    .map(String::from)
    .to_vec()
}

/// Two objects of one collection in the configuration, and their parent.
struct Fixture {
    collection: &'static str,
    /// For get and replace.
    kept: &'static str,
    /// For delete, so that `kept` stays for the other operations.
    deletable: &'static str,
    /// The parent's query parameter and name.
    parent: Option<(&'static str, &'static str)>,
}

/// `fe1`/`fe2` with binds `b1`/`b2` in `fe1`, `be1`/`be2` with servers `s1`/`s2` in `be1`.
const OBJECTS: [Fixture; 4] = [
    Fixture {
        collection: "frontends",
        kept: "fe1",
        deletable: "fe2",
        parent: None,
    },
    Fixture {
        collection: "backends",
        kept: "be1",
        deletable: "be2",
        parent: None,
    },
    Fixture {
        collection: "servers",
        kept: "s1",
        deletable: "s2",
        parent: Some(("backend", "be1")),
    },
    Fixture {
        collection: "binds",
        kept: "b1",
        deletable: "b2",
        parent: Some(("frontend", "fe1")),
    },
];

/// schemathesis hooks (Python, loaded through the configuration file's `hooks`).
///
/// The fuzzing and stateful phases take names and the transaction from the configuration's
/// dictionaries, most of the time. The examples and coverage phases do not use the dictionaries
/// (the coverage phase varies one parameter, or the body, at a time from otherwise fixed
/// values): in the objects run, every parameter such a case does not vary gets the fixture's
/// value (the transaction, the parent, the object's name), so that the varied one is what the
/// server judges. A write names a transaction or a version, never both: with the fixture
/// transaction, `version` is dropped.
const HOOKS: &str = r#"import json
import os

import schemathesis

# The objects run only: {"transaction": id, "kept": {collection: name},
# "deletable": {collection: name}, "parents": {collection: {parameter: name}}}.
STEER = json.loads(os.environ.get("DATAPLANE_STEER") or "null")


def coverage_varies(case):
    """(location, name, schema location) of what an examples- or coverage-phase case varies
    (location and name are None when nothing is), else None."""
    meta = getattr(case, "_meta", None)
    if meta is None or str(meta.phase.name) not in ("coverage", "examples"):
        return None
    data = meta.phase.data
    location = getattr(data, "parameter_location", None)
    return (getattr(location, "value", location), getattr(data, "parameter", None),
            getattr(data, "location", None) or "")


@schemathesis.hook
def before_call(context, case, kwargs):
    if STEER is None:
        return
    query = case.query if case.query is not None else {}
    varies = coverage_varies(case)
    if varies is None:
        if query.get("transaction_id") == STEER["transaction"]:
            query.pop("version", None)
        return
    where = varies[:2]
    collection = case.path.split("/")[4]
    if where == ("query", "version"):
        query.pop("transaction_id", None)
    elif where != ("query", "transaction_id"):
        query["transaction_id"] = STEER["transaction"]
        query.pop("version", None)
    for parameter, value in STEER["parents"].get(collection, {}).items():
        if where != ("query", parameter):
            query[parameter] = value
    case.query = query
    if "{name}" in case.path and where != ("path", "name"):
        names = STEER["deletable"] if case.method.upper() == "DELETE" else STEER["kept"]
        case.path_parameters["name"] = names[collection]
        body = case.body
        if (case.method.upper() == "PUT" and isinstance(body, dict)
                and isinstance(body.get("name"), str)
                and not varies[2].startswith("/properties/name")):
            body["name"] = names[collection]


@schemathesis.hook
def filter_failure(context, failure, case, response):
    # Swagger 2.0: a response documented without a `schema` has no body, and a response without
    # a body has no Content-Type (RFC 9110, 8.3). schemathesis expects the operation's
    # `produces` type even then; that one case alone is not a failure.
    if type(failure).__name__ == "MissingContentType" and not response.content:
        documented = case.operation.responses.find_by_status_code(response.status_code)
        if documented is not None and documented.get_raw_schema() is None:
            return False
    return True
"#;

/// `DATAPLANE_STEER` for the hooks: the objects run's transaction and the fixture's names.
fn steering(tx: &str) -> String {
    let map = |f: &dyn Fn(&Fixture) -> serde_json::Value| {
        OBJECTS
            .iter()
            .map(|o| (o.collection.to_string(), f(o)))
            .collect::<serde_json::Map<_, _>>()
    };
    serde_json::json!({
        "transaction": tx,
        "kept": map(&|o| o.kept.into()),
        "deletable": map(&|o| o.deletable.into()),
        "parents": map(&|o| o.parent.map_or(serde_json::json!({}), |(p, v)| serde_json::json!({p: v}))),
    })
    .to_string()
}

/// A parameter (`location.name`) drawn from a dictionary with a probability.
type Draw = (String, String, f64);

/// One `[[operations]]` entry: the operation (`METHOD path`) and its parameters' dictionaries.
fn operation_entry(name: &str, draws: &[Draw]) -> String {
    let params: Vec<String> = draws
        .iter()
        .map(|(p, d, prob)| format!("\"{p}\" = {{ dictionary = \"{d}\", probability = {prob} }}"))
        .collect();
    format!(
        "\n[[operations]]\ninclude-name = \"{name}\"\nparameters = {{ {} }}\n",
        params.join(", ")
    )
}

/// The `[dictionaries]` and `[[operations]]` that point requests at the fixtures.
fn fixture_tables(objects_tx: &str, other_tx: &str) -> String {
    let mut dictionaries = format!(
        "[dictionaries]\ntransaction = {{ values = [\"{objects_tx}\"] }}\nother_transaction = {{ values = [\"{other_tx}\"] }}\n"
    );
    let mut operations = String::new();
    let draw = |p: &str, d: &str, prob: f64| (p.to_string(), d.to_string(), prob);
    for Fixture {
        collection,
        kept,
        deletable,
        parent,
    } in OBJECTS
    {
        dictionaries.push_str(&format!(
            "kept_{collection} = {{ values = [\"{kept}\"] }}\ndeletable_{collection} = {{ values = [\"{deletable}\"] }}\n"
        ));
        let mut draws = vec![draw("query.transaction_id", "transaction", 0.9)];
        if let Some((p, v)) = parent {
            dictionaries.push_str(&format!("parent_{p} = {{ values = [\"{v}\"] }}\n"));
            draws.push(draw(&format!("query.{p}"), &format!("parent_{p}"), 0.9));
        }
        let named = |which: &str| {
            let mut d = draws.clone();
            d.push(draw("path.name", &format!("{which}_{collection}"), 0.8));
            d
        };
        let path = format!("{CFG}/{collection}");
        for (name, d) in [
            (format!("GET {path}"), draws.clone()),
            (format!("POST {path}"), draws.clone()),
            (format!("GET {path}/{{name}}"), named("kept")),
            (format!("PUT {path}/{{name}}"), named("kept")),
            (format!("DELETE {path}/{{name}}"), named("deletable")),
        ] {
            operations.push_str(&operation_entry(&name, &d));
        }
    }
    for method in ["GET", "PUT", "DELETE"] {
        operations.push_str(&operation_entry(
            &format!("{method} /services/haproxy/transactions/{{id}}"),
            &[draw("path.id", "other_transaction", 0.8)],
        ));
    }
    format!("{dictionaries}{operations}")
}

/// The schemathesis configuration file: no secret in it (the credentials are `${…}` references
/// to the environment of the run).
fn config(a: &Appliance, objects_tx: &str, other_tx: &str) -> String {
    let dir = a.dir.path().display();
    format!(
        r#"base-url = "https://127.0.0.1:{port}/v2"
tls-verify = "{dir}/ca.crt"
seed = {SEED}
# One worker: Python 3.11's ast module is not thread-safe ("AST constructor recursion depth
# mismatch" from hypothesis's lambda descriptions with two workers).
workers = 1
request-timeout = 60
hooks = "{dir}/schemathesis_hooks.py"

[auth.basic]
username = "${{DATAPLANE_USER}}"
password = "${{DATAPLANE_PASSWORD}}"

[generation]
max-examples = {MAX_EXAMPLES}
database = "none"

[cache]
enabled = false

[checks]
enabled = false
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_schema_conformance.enabled = true

{tables}"#,
        port = a.port,
        tables = fixture_tables(objects_tx, other_tx),
    )
}

/// The objects of [`OBJECTS`] in haproxy.cfg, for the generated requests to find.
fn fixtures(dir: &Path) {
    let cfg = dir.join("haproxy.cfg");
    let mut text = std::fs::read_to_string(&cfg).expect("haproxy.cfg");
    let port = common::free_port;
    text.push_str(&format!(
        "\nbackend be1\n  mode tcp\n  server s1 127.0.0.1:{}\n  server s2 127.0.0.1:{}\n\nbackend be2\n  mode tcp\n\nfrontend fe1\n  mode tcp\n  default_backend be1\n  bind 127.0.0.1:{} name b1\n  bind 127.0.0.1:{} name b2\n\nfrontend fe2\n  mode tcp\n  default_backend be1\n",
        port(),
        port(),
        port(),
        port()
    ));
    std::fs::write(&cfg, text).expect("haproxy.cfg with fixtures");
}

fn start_transaction(a: &Appliance) -> String {
    let r = a.call(
        "POST",
        &format!("/v2/services/haproxy/transactions?version={}", a.version()),
        None,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"]
        .as_str()
        .expect("a transaction id")
        .to_string()
}

/// What one run did: operations tested and test cases generated, from its summary.
struct Counts {
    operations: u64,
    cases: u64,
}

/// The number after `label` on the summary line that has it ("Tested: 16", "  731 generated").
fn number_near(output: &str, label: &str, before: bool) -> Option<u64> {
    output.lines().find_map(|line| {
        let at = line.find(label)?;
        let text = if before {
            line[..at].split_whitespace().last()?
        } else {
            line[at + label.len()..].split_whitespace().next()?
        };
        text.trim_end_matches(',').parse().ok()
    })
}

/// Runs schemathesis on `paths`; fails the test with its whole output if it finds a failure
/// (or errs, or outlives [`RUN_TIMEOUT`]).
fn schemathesis(a: &Appliance, steer: &str, run: &str, paths: &[String]) -> Counts {
    let log_path = a.path(&format!("schemathesis-{run}.log"));
    let log = File::create(&log_path).expect("schemathesis log");
    let mut cmd = Command::new("schemathesis");
    cmd.arg("--config-file")
        .arg(a.path("schemathesis.toml"))
        .arg("run")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/dataplaneapi-v2.yaml"))
        .arg("--no-color");
    for p in paths {
        cmd.args(["--include-path", p]);
    }
    let mut child = cmd
        .current_dir(a.dir.path())
        .env("DATAPLANE_USER", USER)
        .env("DATAPLANE_PASSWORD", PASSWORD)
        .env("DATAPLANE_STEER", steer)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("schemathesis");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("schemathesis status") {
            break Some(s);
        }
        if start.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let Some(status) = status else {
        panic!("schemathesis ({run}) still running after {RUN_TIMEOUT:?}:\n{output}");
    };
    assert!(
        status.success(),
        "schemathesis ({run}) found failures ({status}):\n{output}"
    );
    let counts = number_near(&output, "Tested:", false)
        .zip(number_near(&output, " generated", true))
        .map(|(operations, cases)| Counts { operations, cases });
    counts.unwrap_or_else(|| panic!("no counts in schemathesis's summary ({run}):\n{output}"))
}

#[test]
fn the_api_conforms_to_its_spec() {
    if !testkit::have("schemathesis") {
        return;
    }
    let a = Appliance::start_with(fixtures);
    let objects_tx = start_transaction(&a);
    let other_tx = start_transaction(&a);
    std::fs::write(a.path("schemathesis_hooks.py"), HOOKS).expect("hooks");
    std::fs::write(
        a.path("schemathesis.toml"),
        config(&a, &objects_tx, &other_tx),
    )
    .expect("schemathesis.toml");
    let version = testkit::run(Command::new("schemathesis").arg("--version"));

    let objects = schemathesis(&a, &steering(&objects_tx), "objects", &object_paths());
    // Whatever the fuzzed transaction holds: committed, or refused with a 4xx.
    let commit = a.call(
        "PUT",
        &format!("/v2/services/haproxy/transactions/{objects_tx}"),
        None,
    );
    let rest = schemathesis(&a, "", "rest", &other_paths());
    common::report(&format!(
        "conformance: schemathesis {}: {} operations, {} test cases (objects in a transaction: {} operations, {} cases; the rest: {} operations, {} cases), seed {SEED}, max-examples {MAX_EXAMPLES}; the fuzzed transaction's commit: {}",
        version.split_whitespace().last().unwrap_or_default(),
        objects.operations + rest.operations,
        objects.cases + rest.cases,
        objects.operations,
        objects.cases,
        rest.operations,
        rest.cases,
        commit.status
    ));
    assert_eq!(
        objects.operations + rest.operations,
        32,
        "operations tested"
    );
    assert!(
        commit.status < 500,
        "committing the fuzzed transaction: {} {}",
        commit.status,
        commit.body
    );
    assert!(
        a.haproxy_accepts(),
        "haproxy -c refuses the configuration:\n{}",
        a.config_text()
    );
}
