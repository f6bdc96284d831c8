//! Where potproxy keeps its state (the CA in `certs/`, `token-cache.json`): one directory chosen
//! the same way on every start, so starting the proxy from another working directory never
//! silently makes a new CA. The choice is a pure function of the command line and the
//! environment ([`StateDir::resolve`]); creating the directory is the caller's job.
//!
//! Order: `--state-dir` / `POTPROXY_STATE_DIR`, then systemd's `STATE_DIRECTORY` (set by
//! `StateDirectory=`), then the XDG state directory (`$XDG_STATE_HOME/potproxy`, else
//! `~/.local/state/potproxy`).

use std::path::{Path, PathBuf};

/// Environment variable naming the state directory (the `--state-dir` flag wins over it).
pub const ENV_STATE_DIR: &str = "POTPROXY_STATE_DIR";
/// Set by systemd for units with `StateDirectory=`.
pub const ENV_SYSTEMD_STATE_DIRECTORY: &str = "STATE_DIRECTORY";

/// Which rule picked the directory (logged at start, printed by `potproxy check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateOrigin {
    /// `--state-dir` or `POTPROXY_STATE_DIR`.
    Explicit,
    /// systemd's `STATE_DIRECTORY`.
    Systemd,
    /// `$XDG_STATE_HOME/potproxy` or `~/.local/state/potproxy`.
    Xdg,
}

impl std::fmt::Display for StateOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StateOrigin::Explicit => "--state-dir / POTPROXY_STATE_DIR",
            StateOrigin::Systemd => "systemd STATE_DIRECTORY",
            StateOrigin::Xdg => "XDG state directory",
        })
    }
}

/// The chosen state directory, always absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    pub path: PathBuf,
    pub origin: StateOrigin,
}

/// Why no state directory could be chosen.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    #[error("no state directory: HOME is not set; pass --state-dir DIR or set POTPROXY_STATE_DIR")]
    NoHome,
    #[error("`{key}` has invalid value `{value}`: must be a non-empty path")]
    Empty { key: &'static str, value: String },
}

impl StateDir {
    /// Picks the directory from `explicit` (the flag, already merged with `POTPROXY_STATE_DIR`
    /// by the caller) and the environment read through `env`. Relative explicit paths are made
    /// absolute against `cwd` so the path logged is the path used.
    pub fn resolve(
        explicit: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        cwd: &Path,
    ) -> Result<StateDir, StateError> {
        let absolute = |p: PathBuf| if p.is_absolute() { p } else { cwd.join(p) };
        if let Some(p) = explicit {
            if p.as_os_str().is_empty() {
                return Err(StateError::Empty {
                    key: "--state-dir",
                    value: String::new(),
                });
            }
            return Ok(StateDir {
                path: absolute(p.to_path_buf()),
                origin: StateOrigin::Explicit,
            });
        }
        let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        // systemd passes one absolute path per StateDirectory= entry, colon-separated.
        if let Some(dirs) = var(ENV_SYSTEMD_STATE_DIRECTORY) {
            if let Some(first) = dirs.split(':').find(|d| !d.is_empty()) {
                return Ok(StateDir {
                    path: absolute(PathBuf::from(first)),
                    origin: StateOrigin::Systemd,
                });
            }
        }
        // The XDG spec says relative values are invalid and must be ignored.
        if let Some(xdg) = var("XDG_STATE_HOME").map(PathBuf::from) {
            if xdg.is_absolute() {
                return Ok(StateDir {
                    path: xdg.join("potproxy"),
                    origin: StateOrigin::Xdg,
                });
            }
        }
        let home = var("HOME").map(PathBuf::from).ok_or(StateError::NoHome)?;
        Ok(StateDir {
            path: absolute(home).join(".local/state/potproxy"),
            origin: StateOrigin::Xdg,
        })
    }

    /// [`resolve`](Self::resolve) against the process environment and working directory.
    pub fn from_process(explicit: Option<&Path>) -> Result<StateDir, StateError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        Self::resolve(explicit, |k| std::env::var(k).ok(), &cwd)
    }

    /// `p` when absolute, else `p` inside the state directory.
    pub fn join(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.join(p)
        }
    }

    /// Creates the directory (owner-only, 0700, when new).
    pub fn create(&self) -> std::io::Result<()> {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn pick(explicit: Option<&str>, vars: &[(&str, &str)]) -> Result<StateDir, StateError> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StateDir::resolve(
            explicit.map(Path::new),
            |k| env.get(k).cloned(),
            Path::new("/work/here"),
        )
    }

    #[test]
    fn the_flag_wins_over_systemd_and_xdg_and_is_made_absolute() {
        let all = [
            ("STATE_DIRECTORY", "/var/lib/potproxy"),
            ("XDG_STATE_HOME", "/home/u/.state"),
            ("HOME", "/home/u"),
        ];
        let d = pick(Some("state"), &all).unwrap();
        assert_eq!(d.path, PathBuf::from("/work/here/state"));
        assert_eq!(d.origin, StateOrigin::Explicit);
        let d = pick(Some("/srv/pp"), &all).unwrap();
        assert_eq!(d.path, PathBuf::from("/srv/pp"));
    }

    #[test]
    fn under_systemd_the_first_state_directory_is_used() {
        let d = pick(
            None,
            &[
                ("STATE_DIRECTORY", "/var/lib/potproxy:/var/lib/other"),
                ("HOME", "/home/u"),
            ],
        )
        .unwrap();
        assert_eq!(d.path, PathBuf::from("/var/lib/potproxy"));
        assert_eq!(d.origin, StateOrigin::Systemd);
    }

    #[test]
    fn otherwise_the_xdg_state_dir_never_the_working_directory() {
        let d = pick(None, &[("XDG_STATE_HOME", "/x/state"), ("HOME", "/home/u")]).unwrap();
        assert_eq!(d.path, PathBuf::from("/x/state/potproxy"));
        // A relative XDG_STATE_HOME is invalid per the spec: ignored.
        let d = pick(None, &[("XDG_STATE_HOME", "rel"), ("HOME", "/home/u")]).unwrap();
        assert_eq!(d.path, PathBuf::from("/home/u/.local/state/potproxy"));
        assert_eq!(d.origin, StateOrigin::Xdg);
        assert!(!d.path.starts_with("/work/here"));
    }

    #[test]
    fn no_home_and_no_flag_is_an_error_saying_how_to_choose() {
        let e = pick(None, &[]).unwrap_err();
        assert_eq!(e, StateError::NoHome);
        assert!(e.to_string().contains("--state-dir"));
        assert!(pick(Some(""), &[("HOME", "/h")]).is_err());
    }

    #[test]
    fn relative_config_paths_resolve_inside_the_state_dir() {
        let d = pick(Some("/s"), &[]).unwrap();
        assert_eq!(d.join(Path::new("certs")), PathBuf::from("/s/certs"));
        assert_eq!(
            d.join(Path::new("/abs/c.json")),
            PathBuf::from("/abs/c.json")
        );
    }
}
