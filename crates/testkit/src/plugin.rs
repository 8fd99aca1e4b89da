//! The plugin binary as a process of its own: started on a socket and a
//! state dir (optionally in a network namespace, optionally under a
//! wrapper such as valgrind), ready once its socket answers, killed on drop.

use crate::http::{Reply, request};
use crate::{Error, GUARD, Result, ip_binary};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Instant;

/// How to start the plugin: which binary, where, and with which settings.
/// Settings reach it as its environment (`SOCKET`, `STATE_DIR`,
/// `LOG_LEVEL`, then the extra variables), nothing else of the caller's.
#[derive(Debug, Clone)]
pub struct Launch {
    binary: PathBuf,
    netns: Option<String>,
    wrapper: Vec<String>,
    log_level: String,
    log_to_file: bool,
    env: Vec<(String, String)>,
}

impl Launch {
    /// The plugin `binary`, in the caller's namespace, logging at `info`
    /// to the caller's stderr.
    pub fn new(binary: impl Into<PathBuf>) -> Launch {
        Launch {
            binary: binary.into(),
            netns: None,
            wrapper: Vec::new(),
            log_level: "info".into(),
            log_to_file: false,
            env: Vec::new(),
        }
    }

    /// Runs it in the network namespace `netns` (`ip netns exec` execs the
    /// plugin, so the child's PID is the plugin's).
    pub fn netns(mut self, netns: Option<&str>) -> Launch {
        self.netns = netns.map(String::from);
        self
    }

    /// Runs it through `wrapper`: a program and its arguments that execs
    /// the plugin in the same process (valgrind).
    pub fn wrapper(mut self, wrapper: &[String]) -> Launch {
        self.wrapper = wrapper.to_vec();
        self
    }

    /// Its `LOG_LEVEL`.
    pub fn log_level(mut self, level: &str) -> Launch {
        self.log_level = level.into();
        self
    }

    /// Sends its log to `<state dir>.log` (see [`Plugin::log_text`]).
    pub fn log_to_file(mut self) -> Launch {
        self.log_to_file = true;
        self
    }

    /// Extra environment (settings), applied after the kit's own.
    pub fn env(mut self, env: &[(&str, &str)]) -> Launch {
        self.env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// Starts the plugin on `socket` and `state_dir` and waits until it
    /// serves.
    pub fn start(&self, socket: &Path, state_dir: &Path) -> Result<Plugin> {
        let mut argv: Vec<OsString> = self.wrapper.iter().map(Into::into).collect();
        argv.push(self.binary.clone().into());
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new(ip_binary()?);
                c.args(["netns", "exec", ns]).args(&argv);
                c
            }
            None => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        cmd.env_clear()
            .env("SOCKET", socket)
            .env("STATE_DIR", state_dir)
            .env("LOG_LEVEL", &self.log_level)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let log = if self.log_to_file {
            let log = state_dir.with_extension("log");
            let file = std::fs::File::create(&log)
                .map_err(|e| Error::with(format!("creating {}", log.display()), e))?;
            cmd.stderr(file);
            Some(log)
        } else {
            None
        };
        let child = cmd
            .spawn()
            .map_err(|e| Error::with(format!("starting {}", self.binary.display()), e))?;
        let mut plugin = Plugin {
            child,
            socket: socket.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            log,
            _dir: None,
        };
        plugin.wait_ready()?;
        Ok(plugin)
    }

    /// Starts the plugin on the socket and state dir of `dir`.
    pub fn start_at(&self, dir: &PluginDir) -> Result<Plugin> {
        self.start(&dir.socket, &dir.state)
    }

    /// Starts the plugin in `dir` (see [`PluginDir`]), which lives as long
    /// as the plugin.
    pub fn start_in(&self, dir: tempfile::TempDir) -> Result<Plugin> {
        let dir = PluginDir::from(dir);
        let mut plugin = self.start_at(&dir)?;
        plugin._dir = Some(dir);
        Ok(plugin)
    }
}

/// A directory with a plugin's socket (`p.sock`) and state dir (`state`),
/// removed on drop. It may outlive plugin processes: restarts on one state.
pub struct PluginDir {
    /// The socket.
    pub socket: PathBuf,
    /// The state dir.
    pub state: PathBuf,
    dir: tempfile::TempDir,
}

impl PluginDir {
    /// In a fresh temporary directory.
    pub fn new() -> Result<PluginDir> {
        let dir = tempfile::tempdir().map_err(|e| Error::with("creating a temp dir", e))?;
        Ok(PluginDir::from(dir))
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl From<tempfile::TempDir> for PluginDir {
    fn from(dir: tempfile::TempDir) -> PluginDir {
        PluginDir {
            socket: dir.path().join("p.sock"),
            state: dir.path().join("state"),
            dir,
        }
    }
}

/// The running plugin, killed (SIGKILL) on drop.
pub struct Plugin {
    child: Child,
    /// Socket it serves.
    pub socket: PathBuf,
    /// Its state dir.
    pub state_dir: PathBuf,
    /// Its log file, if [`Launch::log_to_file`].
    pub log: Option<PathBuf>,
    _dir: Option<PluginDir>,
}

impl Plugin {
    /// Polls for the socket until it accepts a connection; fails if the
    /// process exits first or [`GUARD`] passes.
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + GUARD;
        loop {
            let exited = self
                .child
                .try_wait()
                .map_err(|e| Error::with("waiting for the plugin", e))?;
            if let Some(status) = exited {
                return Err(Error::new(format!(
                    "plugin exited during start: {status}{}",
                    self.log_tail()
                )));
            }
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::new(format!(
                    "plugin did not serve {} within {GUARD:?}{}",
                    self.socket.display(),
                    self.log_tail()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    fn log_tail(&self) -> String {
        match &self.log {
            Some(_) => format!("; log:\n{}", self.log_text()),
            None => String::new(),
        }
    }

    /// Process id of the plugin.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it logged so far (empty unless [`Launch::log_to_file`]).
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|l| std::fs::read_to_string(l).ok())
            .unwrap_or_default()
    }

    /// One POST on a connection of its own (see [`request`]).
    pub fn post(&self, path: &str, body: &str) -> Reply {
        request(&self.socket, "POST", path, body.as_bytes())
    }

    /// SIGKILL, as a crash, and reap it.
    pub fn kill9(&mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM, and wait for it to exit.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.signal(Signal::SIGTERM);
        self.child
            .wait()
            .map_err(|e| Error::with("waiting for the plugin to exit", e))
    }

    fn signal(&self, signal: Signal) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.kill9();
    }
}
