//! The built `potproxy` binary, for what only a process shows: its logs (text, or JSON with its
//! access lines parsed), its drain on signals, its exit code, its CPU time, and life under a
//! wrapper such as `prlimit`. Started on a free loopback port with a TOML fragment and killed on
//! drop.

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
        Binary::start_with(extra_toml, resolve, &[], true)
    }

    /// [`Binary::start`] run under `prefix` (e.g. `prlimit --nofile=256:256`), with JSON or
    /// text logs.
    pub fn start_with(
        extra_toml: &str,
        resolve: &[(&str, SocketAddr)],
        prefix: &[&str],
        json: bool,
    ) -> Binary {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", super::free_port()).parse().unwrap();
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
        let bin = env!("CARGO_BIN_EXE_potproxy");
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let child = cmd
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            .env_remove("POTPROXY_LISTEN")
            .env_remove("POTPROXY_CONFIG")
            .env_remove("YT_DLP_PO_TOKEN")
            .env("POTPROXY_LOG", "info")
            .env("POTPROXY_LOG_FORMAT", if json { "json" } else { "text" })
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

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// User + system CPU time so far (from /proc/<pid>/stat, in clock ticks).
    pub fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis(ticks * 1000 / hz.max(1))
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
