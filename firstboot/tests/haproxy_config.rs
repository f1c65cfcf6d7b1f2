//! The generated haproxy.cfg under real haproxy: `haproxy -c` accepts it, and haproxy running on
//! loopback with the generated `userlist controller` lets the configured user in with the
//! configured password and answers 401 to a wrong one.
#![allow(clippy::unwrap_used)]

mod apply_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use apply_support::*;
use base64::Engine as _;

fn applied(props: &[(String, String)], deployment: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let o = apply(&root, props, deployment, &[]);
    assert!(o.status.success(), "{}", text(&o));
    dir
}

#[test]
fn haproxy_accepts_the_generated_config() {
    if !have("haproxy") {
        return;
    }
    for (props, d) in [(default_props(), "default"), (frontend_props(), "frontend")] {
        let dir = applied(&props, d);
        let cfg = dir.path().join("root/etc/haproxy/haproxy.cfg");
        let o = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "haproxy -c rejected {}: {}",
            cfg.display(),
            text(&o)
        );
    }
}

/// Kills haproxy when the test ends, however it ends.
struct Haproxy(Child);
impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16, auth: Option<(&str, &str)>) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut req = "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n".to_string();
    if let Some((u, p)) = auth {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req.push_str(&format!("Authorization: Basic {b}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    Ok(resp)
}

fn status_line(resp: &str) -> &str {
    resp.lines().next().unwrap_or("")
}

#[test]
fn haproxy_authenticates_the_api_user_with_the_generated_userlist() {
    if !have("haproxy") {
        return;
    }
    let props = with(
        default_props(),
        &[("loadbalance.haproxy_user", Some("lbadmin"))],
    );
    let dir = applied(&props, "default");
    let generated =
        std::fs::read_to_string(dir.path().join("root/etc/haproxy/haproxy.cfg")).unwrap();
    // The generated userlist section, verbatim.
    let userlist: String = generated
        .split_inclusive('\n')
        .skip_while(|l| !l.starts_with("userlist controller"))
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert!(
        userlist.contains("user lbadmin password $6$"),
        "{generated}"
    );
    let port = free_port();
    let test_cfg = format!(
        "global\n  log stderr format raw local0 err\n\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\n{userlist}\nfrontend api\n  bind 127.0.0.1:{port}\n  http-request auth realm test unless {{ http_auth(controller) }}\n  http-request return status 200 content-type text/plain string ok\n"
    );
    let cfg_path = dir.path().join("test-haproxy.cfg");
    std::fs::write(&cfg_path, test_cfg).unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Haproxy(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let no_auth = loop {
        match get(port, None) {
            Ok(r) => break r,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("haproxy did not listen on {port}: {e}"),
        }
    };
    assert!(status_line(&no_auth).contains(" 401 "), "{no_auth}");
    let good = get(port, Some(("lbadmin", "Api-pass-123"))).unwrap();
    assert!(status_line(&good).contains(" 200 "), "{good}");
    let wrong = get(port, Some(("lbadmin", "Api-pass-124"))).unwrap();
    assert!(status_line(&wrong).contains(" 401 "), "{wrong}");
    let wrong_user = get(port, Some(("admin", "Api-pass-123"))).unwrap();
    assert!(status_line(&wrong_user).contains(" 401 "), "{wrong_user}");
}
