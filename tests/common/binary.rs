//! The built `potproxy` binary, for what only a process shows: its access lines (JSON logs), its
//! drain on SIGTERM and its exit code. Started on a free loopback port with a TOML fragment and
//! killed on drop.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Binary {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    /// Starts the binary with `extra_toml` (top-level keys and tables) and `[upstream.resolve]`
    /// entries, a static token source, the API off, JSON logs at info.
    pub fn start(extra_toml: &str, resolve: &[(&str, SocketAddr)]) -> Binary {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut toml = format!(
            "listen = \"{addr}\"\n{extra_toml}\n[api]\nenabled = false\n\n[ca]\ndir = {:?}\n\n[tokens]\nsources = [\"static\"]\n\n[upstream.resolve]\n",
            dir.path().join("certs").to_str().unwrap()
        );
        for (name, a) in resolve {
            toml.push_str(&format!("{name:?} = \"{a}\"\n"));
        }
        let config = dir.path().join("potproxy.toml");
        std::fs::write(&config, toml).unwrap();
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_potproxy"))
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            .env_remove("POTPROXY_LISTEN")
            .env_remove("POTPROXY_CONFIG")
            .env_remove("YT_DLP_PO_TOKEN")
            .env("POTPROXY_LOG", "info")
            .env("POTPROXY_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut b = Binary { child, addr, dir };
        b.wait_listening();
        b
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// The access lines logged so far, parsed.
    pub fn access_lines(&self) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == "potproxy::access")
            .collect()
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("potproxy exited early ({st}):\n{}", self.log());
            }
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("potproxy did not listen on {}:\n{}", self.addr, self.log());
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// The exit code once the process has exited, polling up to `within`.
    pub fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}
