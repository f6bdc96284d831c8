//! A real `redis-server` for the fleet tests: started on a free loopback port with persistence
//! off, hung (SIGSTOP), resumed, stopped by PID, restarted on the same port, and killed when
//! dropped. When the binary is absent, [`RedisServer::start`] answers `None` after printing a
//! skip message — unless `CI` is set, where a missing Redis is a broken setup and panics.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct RedisServer {
    pub addr: SocketAddr,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

fn binary() -> Option<&'static str> {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    found.then_some("redis-server")
}

/// Whether `addr` answers PING.
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid}");
}

impl RedisServer {
    /// A fresh server, or `None` (skip) when redis-server is not installed and `CI` is unset.
    pub fn start() -> Option<RedisServer> {
        if binary().is_none() {
            let ci = super::testutil::ci();
            if ci {
                panic!(
                    "redis-server not installed and CI is set: the fleet tests must not skip in CI (.ci/run installs it)"
                );
            }
            eprintln!("skipping: redis-server not installed (Debian package redis-server)");
            return None;
        }
        let mut server = RedisServer {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        server.spawn();
        Some(server)
    }

    /// `redis://` URL of the server.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.addr.port().to_string())
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers(self.addr) {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing.
    pub fn hang(&self) {
        signal(self.pid(), "STOP");
    }

    /// SIGKILL, then reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A new, empty server on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL works on a stopped (hung) server too.
        self.kill();
    }
}
