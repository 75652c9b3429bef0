//! systemd's notify protocol (sd_notify(3)), through the `sd-notify` crate. Every call is a
//! no-op when `NOTIFY_SOCKET` is unset (not under systemd, or not `Type=notify`).
//!
//! A notification is a datagram on a Unix socket, and a send can block (a busy or stuck
//! systemd lets the socket's queue fill up). The control loop must never wait on it, so each
//! call only queues its message for a thread of this module's own, which sends them in order.

use std::sync::OnceLock;
use std::sync::mpsc::Sender;
use std::time::Duration;

use sd_notify::NotifyState;

/// A notification, owned, on its way to the sending thread.
enum Message {
    Ready(String),
    /// With the monotonic time the reload began at (systemd ≥ 253 wants it).
    Reloading(Option<i128>),
    Stopping,
    Status(String),
    Watchdog,
}

/// The sending thread's queue; `None` when there is no systemd to tell.
fn queue() -> Option<&'static Sender<Message>> {
    static QUEUE: OnceLock<Option<Sender<Message>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            std::env::var_os("NOTIFY_SOCKET")?;
            let (tx, rx) = std::sync::mpsc::channel::<Message>();
            std::thread::Builder::new()
                .name("tributary-notify".into())
                .spawn(move || {
                    while let Ok(message) = rx.recv() {
                        deliver(&message);
                    }
                })
                .inspect_err(
                    |e| tracing::warn!(error = %e, "cannot start the sd_notify thread; systemd is not told"),
                )
                .ok()?;
            Some(tx)
        })
        .as_ref()
}

fn deliver(message: &Message) {
    let sent = match message {
        Message::Ready(status) => sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(status)]),
        Message::Reloading(Some(usec)) => {
            sd_notify::notify(&[NotifyState::Reloading, NotifyState::MonotonicUsec(*usec)])
        }
        Message::Reloading(None) => sd_notify::notify(&[NotifyState::Reloading]),
        Message::Stopping => sd_notify::notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]),
        Message::Status(status) => sd_notify::notify(&[NotifyState::Status(status)]),
        Message::Watchdog => sd_notify::notify(&[NotifyState::Watchdog]),
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

fn send(message: Message) {
    if let Some(queue) = queue() {
        let _ = queue.send(message);
    }
}

pub(super) fn ready(status: &str) {
    send(Message::Ready(status.to_string()));
}

/// Reload started; systemd ≥ 253 wants the monotonic timestamp with it (Type=notify-reload),
/// taken now, not when the message leaves.
pub(super) fn reloading() {
    let usec = match NotifyState::monotonic_usec_now() {
        Ok(NotifyState::MonotonicUsec(usec)) => Some(usec),
        _ => None,
    };
    send(Message::Reloading(usec));
}

pub(crate) fn stopping() {
    send(Message::Stopping);
}

pub(super) fn status(status: &str) {
    send(Message::Status(status.to_string()));
}

pub(super) fn watchdog() {
    send(Message::Watchdog);
}

/// How often to ping the watchdog: half the interval systemd set (WatchdogSec=), if any.
pub(crate) fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .map(|d| d / 2)
        .filter(|d| !d.is_zero())
}
