//! The real binary running as a daemon: a NOTIFY_SOCKET the test owns (as systemd would),
//! signals, and stderr collected as it comes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::net::UnixDatagram;
use tokio::process::{Child, Command};

/// Upper bound for any single wait on the daemon; a wait that hits it fails the test.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Daemon {
    child: Child,
    socket: UnixDatagram,
    stderr: Arc<Mutex<String>>,
    /// Reads the child's stderr into `stderr` until the child exits.
    reader: Option<std::thread::JoinHandle<()>>,
    _socket_dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `tributary --config CONFIG run` with a notify socket.
    pub fn start(config: &Path) -> Daemon {
        Daemon::start_with(config, &[], false)
    }

    /// Starts it with extra environment variables, and with stderr as the journal would
    /// connect it (`JOURNAL_STREAM` naming the stream) when `journal`.
    pub fn start_with(config: &Path, env: &[(&str, &str)], journal: bool) -> Daemon {
        use std::os::unix::fs::MetadataExt;
        let socket_dir = tempfile::tempdir().unwrap();
        let socket_path: PathBuf = socket_dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&socket_path).unwrap();
        // Our own pipe, so that its device and inode can be named before the child starts.
        let (reader, writer) = std::io::pipe().unwrap();
        let stream = std::fs::File::from(std::os::fd::OwnedFd::from(writer.try_clone().unwrap()))
            .metadata()
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
        command
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("NOTIFY_SOCKET", &socket_path)
            .env_remove("RUST_LOG")
            .env_remove("JOURNAL_STREAM")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(writer)
            .kill_on_drop(true);
        if journal {
            command.env("JOURNAL_STREAM", format!("{}:{}", stream.dev(), stream.ino()));
        }
        let child = command.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        // The write end went to the child (the command's copy is dropped with it), so the
        // read ends when the child exits.
        drop(command);
        let reader = std::thread::spawn(move || {
            use std::io::Read;
            let mut reader = reader;
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Daemon {
            child,
            socket,
            stderr,
            reader: Some(reader),
            _socket_dir: socket_dir,
        }
    }

    /// The next notify message that contains `needle` (messages before it are dropped).
    pub async fn wait_for(&mut self, needle: &str) -> String {
        let mut buf = vec![0u8; 4096];
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let received = tokio::time::timeout_at(deadline, self.socket.recv(&mut buf)).await;
            let n = match received {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => panic!("notify socket: {e}"),
                Err(_) => panic!(
                    "no notify message with {needle:?} within {WAIT:?}; stderr:\n{}",
                    self.stderr()
                ),
            };
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            if message.contains(needle) {
                return message;
            }
        }
    }

    /// Waits for rounds (STATUS after each) until `check` holds, at most `rounds` of them.
    pub async fn until_round(&mut self, rounds: usize, mut check: impl FnMut() -> bool) {
        for _ in 0..rounds {
            if check() {
                return;
            }
            self.wait_for("last round").await;
        }
        assert!(
            check(),
            "condition still false after {rounds} rounds; stderr:\n{}",
            self.stderr()
        );
    }

    /// Reads and drops the notify messages waiting, as systemd would have read them: a test
    /// that runs a daemon for many rounds without waiting for messages calls this now and then,
    /// or the socket's buffer fills and the daemon's next message waits for room.
    pub fn drain(&mut self) {
        let mut buf = vec![0u8; 4096];
        while self.socket.try_recv(&mut buf).is_ok() {}
    }

    pub fn signal(&self, signal: Signal) {
        let pid = self.child.id().expect("daemon running");
        kill(Pid::from_raw(pid as i32), signal).unwrap();
    }

    /// Waits for the process to exit; returns its exit code.
    pub async fn exit_code(&mut self) -> i32 {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("daemon exits in time")
            .unwrap();
        status.code().unwrap_or(-1)
    }

    /// Waits for the process to exit, then for every line it wrote: its exit code and its
    /// whole log (what [`Daemon::stderr`] has read so far may lag behind the notify socket).
    pub async fn exit_and_log(&mut self) -> (i32, String) {
        let code = self.exit_code().await;
        if let Some(reader) = self.reader.take() {
            tokio::task::spawn_blocking(move || reader.join())
                .await
                .unwrap()
                .unwrap();
        }
        (code, self.stderr())
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Starts the daemon and waits until it is ready; returns the address its HTTP server
    /// bound, as its READY status says (configured as port 0, so tests never race each other
    /// for a port).
    pub async fn ready_serving(&mut self) -> std::net::SocketAddr {
        self.ready_serving_both().await.0
    }

    /// Like [`Daemon::ready_serving`], with the address of /healthz and /metrics too (the same
    /// one when the config serves both on one address).
    pub async fn ready_serving_both(&mut self) -> (std::net::SocketAddr, std::net::SocketAddr) {
        let ready = self.wait_for("READY=1").await;
        let address = |label: &str| {
            ready
                .split(label)
                .nth(1)
                .and_then(|rest| rest.split([';', '\n']).next())
                .and_then(|a| a.trim().parse().ok())
        };
        let public = address("serving on ").unwrap_or_else(|| panic!("no address in {ready:?}"));
        (public, address("admin on ").unwrap_or(public))
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("daemon running")
    }
}
