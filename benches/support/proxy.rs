//! `potproxy` as a process of its own for the benchmarks, so that its memory can be read from
//! /proc apart from the client's and the origin's: the release binary started on a free port
//! with a config of the bench's, and the /proc figures read from it.
// Each benchmark uses a different part of this.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{TestPki, free_port};

/// A figure of `/proc/<pid>/status` given in kB, by its `field` (`VmHWM:` the peak resident
/// set, `VmRSS:` the current one).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A running `potproxy` (killed when dropped) and the temp dir holding its config and CA.
pub struct ProxyProcess {
    child: Child,
    pub addr: String,
    dir: tempfile::TempDir,
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ProxyProcess {
    /// The release binary on a free loopback port, its CA in its temp dir, trusting `pki`'s CA
    /// upstream; `rest` ends its config (the tables after `[upstream]`'s CA list: resolve
    /// entries, tokens). With `own_state`, its state dir is the temp dir too, so it reads no
    /// tokens cached by another run. Returns once it listens and has written its CA.
    pub fn start(pki: &TestPki, rest: &str, own_state: bool) -> ProxyProcess {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let config = format!(
            "listen = \"{addr}\"\n[ca]\ndir = {ca:?}\n[upstream]\nextra_ca_certs = [{cert:?}]\n{rest}",
            ca = dir.path().join("ca").to_str().unwrap(),
            cert = pki.ca_path.to_str().unwrap(),
        );
        let cfg_path = dir.path().join("bench.toml");
        std::fs::write(&cfg_path, config).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_potproxy"));
        cmd.arg("--config").arg(&cfg_path);
        if own_state {
            cmd.arg("--state-dir").arg(dir.path());
        }
        let mut child = cmd
            .env("POTPROXY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run the potproxy binary");
        for _ in 0..100 {
            if std::net::TcpStream::connect(&addr).is_ok() && dir.path().join("ca/ca.pem").exists()
            {
                return ProxyProcess { child, addr, dir };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("potproxy did not start listening on {addr}");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client (HTTP/1.1) going through this proxy and trusting only its CA.
    pub fn client(&self) -> reqwest::ClientBuilder {
        let ca_pem = std::fs::read(self.dir.path().join("ca/ca.pem")).unwrap();
        reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(format!("http://{}", self.addr)).unwrap())
            .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
            .tls_built_in_root_certs(false)
            .http1_only()
    }
}
