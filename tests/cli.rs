//! The command line as an operator meets it: where state goes, `ca`, `check`, `--api-listen`
//! and an API port clash, shell completions and the man page. Runs the built binary.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The binary with a clean environment: no inherited potproxy settings, `HOME` in `home`.
fn potproxy(home: &Path, cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_potproxy"));
    for k in [
        "POTPROXY_CONFIG",
        "POTPROXY_STATE_DIR",
        "POTPROXY_LISTEN",
        "POTPROXY_API_LISTEN",
        "STATE_DIRECTORY",
        "XDG_STATE_HOME",
        "YT_DLP_PO_TOKEN",
        "TOKEN_TTL",
        "RUST_BACKTRACE",
        "RUST_LIB_BACKTRACE",
    ] {
        c.env_remove(k);
    }
    c.env("HOME", home).env("NO_COLOR", "1").current_dir(cwd);
    c
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn run(c: &mut Command) -> Output {
    c.output().expect("run potproxy")
}

#[test]
fn completions_and_the_man_page_mention_every_subcommand_and_need_no_config() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
        vec!["completions", "fish"],
        vec!["man"],
    ] {
        // A config that does not exist must not matter: these describe the CLI only.
        let out = run(potproxy(home.path(), home.path())
            .env("POTPROXY_CONFIG", "/nonexistent/potproxy.toml")
            .args(&args));
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.len() > 200, "{args:?}: {stdout}");
        for sub in [
            "run",
            "ca",
            "check",
            "mint",
            "session",
            "completions",
            "man",
        ] {
            assert!(stdout.contains(sub), "{args:?} lacks {sub}");
        }
        for flag in ["state-dir", "api-listen"] {
            assert!(
                stdout.contains(flag) || stdout.contains(&flag.replace('-', "\\-")),
                "{args:?} lacks --{flag}"
            );
        }
    }
    let man = text(&run(potproxy(home.path(), home.path()).arg("man")).stdout);
    assert!(man.contains(".TH potproxy 1"), "{man}");
    assert!(man.contains("POTPROXY_STATE_DIR"), "{man}");
}

#[test]
fn ca_prints_an_absolute_path_in_the_state_dir_never_the_working_directory() {
    let home = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    // Default: the XDG state directory under HOME.
    let out = run(potproxy(home.path(), cwd.path()).arg("ca"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let path = text(&out.stdout).trim().to_string();
    let expected = home.path().join(".local/state/potproxy/certs/ca.pem");
    assert_eq!(Path::new(&path), expected);
    assert!(expected.is_file());
    assert!(
        !cwd.path().join("certs").exists(),
        "state landed in the CWD"
    );
    // --pem: the certificate alone, the same one.
    let out = run(potproxy(home.path(), cwd.path()).args(["ca", "--pem"]));
    let pem = text(&out.stdout);
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert_eq!(pem, std::fs::read_to_string(&expected).unwrap());
    // A relative --state-dir is made absolute; systemd's STATE_DIRECTORY is honoured.
    let out = run(potproxy(home.path(), cwd.path()).args(["--state-dir", "st", "ca"]));
    assert_eq!(
        Path::new(text(&out.stdout).trim()),
        cwd.path().join("st/certs/ca.pem")
    );
    let sd = tempfile::tempdir().unwrap();
    let out = run(potproxy(home.path(), cwd.path())
        .env("STATE_DIRECTORY", sd.path())
        .arg("ca"));
    assert_eq!(
        Path::new(text(&out.stdout).trim()),
        sd.path().join("certs/ca.pem")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = sd.path().join("certs/ca.key");
        assert_eq!(
            std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn check_validates_config_and_overrides_without_creating_anything() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("potproxy.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:18080\"\n[api]\nlisten = \"127.0.0.1:14416\"\n",
    )
    .unwrap();
    let out = run(potproxy(home.path(), home.path())
        .args(["check", "--config"])
        .arg(&cfg)
        .args(["--api-listen", "127.0.0.1:14417"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("127.0.0.1:18080"), "{stdout}");
    assert!(
        stdout.contains("127.0.0.1:14417"),
        "the flag wins: {stdout}"
    );
    assert!(stdout.contains("created on first start"), "{stdout}");
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
    assert!(!home.path().join(".local").exists(), "check created state");

    // Errors name the key and the value and exit non-zero.
    std::fs::write(&cfg, "[api]\nlisten = \"nowhere\"\n").unwrap();
    let out = run(potproxy(home.path(), home.path())
        .args(["check", "--config"])
        .arg(&cfg));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("api.listen") && err.contains("nowhere"),
        "{err}"
    );
    let out = run(potproxy(home.path(), home.path())
        .env("POTPROXY_API_LISTEN", "bad:addr")
        .arg("check"));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("bad:addr"));
}

#[test]
fn a_taken_api_port_is_an_error_naming_the_api_and_how_to_move_it() {
    let home = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let cfg = home.path().join("potproxy.toml");
    std::fs::write(&cfg, "[tokens.botguard]\nprewarm = false\n").unwrap();
    let mut child = potproxy(home.path(), home.path())
        .args(["--listen", "127.0.0.1:0", "--api-listen", &addr, "--config"])
        .arg(&cfg)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("potproxy kept running with its API port taken");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("provider API") && err.contains(&addr), "{err}");
    assert!(
        err.contains("--api-listen") && err.contains("enabled = false"),
        "{err}"
    );
}

#[test]
fn a_ca_left_in_the_working_directory_by_an_earlier_version_is_pointed_out() {
    let home = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("certs")).unwrap();
    std::fs::write(cwd.path().join("certs/ca.pem"), "old").unwrap();
    let out = run(potproxy(home.path(), cwd.path()).arg("ca"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("earlier version") && err.contains("--state-dir"),
        "{err}"
    );
    // Pointing the state dir at it uses the old CA, and says nothing.
    let out = run(potproxy(home.path(), cwd.path()).args(["--state-dir", ".", "ca"]));
    assert!(!text(&out.stderr).contains("earlier version"));
}
