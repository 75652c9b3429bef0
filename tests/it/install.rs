//! The packaged config and the systemd unit together, installed as the README says: the
//! config at /etc/tributary/tributary.toml, state under the unit's StateDirectory, run as the
//! unit's user. The test builds that layout in a private mount namespace (a copy of /etc,
//! mounted read-only over the real one; a fresh /var/lib), so the machine is left untouched;
//! that needs root, which CI has. Elsewhere it says it skipped.

use std::process::Command;

use crate::support::as_root_in_mount_namespace;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A unit setting's value (the last one, as systemd reads them).
fn unit_setting(unit: &str, key: &str) -> String {
    unit.lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit sets no {key}="))
        .trim()
        .to_string()
}

/// The two tests here touch the machine's /etc (one reads a copy, one installs a package):
/// never at once.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn the_packaged_config_works_as_the_service_user_with_etc_read_only() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let unit = std::fs::read_to_string(format!("{ROOT}/config/systemd/tributary.service")).unwrap();
    let user = unit_setting(&unit, "User");
    let group = unit_setting(&unit, "Group");
    let state = format!("/var/lib/{}", unit_setting(&unit, "StateDirectory"));
    let mode = unit_setting(&unit, "StateDirectoryMode");
    let umask = unit_setting(&unit, "UMask");
    let exec = unit_setting(&unit, "ExecStart");
    assert!(
        exec.contains("--config /etc/tributary/tributary.toml"),
        "the unit reads the packaged config: {exec}"
    );
    let config = std::fs::read_to_string(format!("{ROOT}/config/tributary.toml")).unwrap();
    for line in config.lines().filter(|l| l.starts_with("path = ")) {
        assert!(
            line.contains(&format!("\"{state}/")),
            "every path of the packaged config is under the StateDirectory: {line}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().display().to_string();
    let bin = env!("CARGO_BIN_EXE_tributary");
    // The unit's user and group, and a web server's user in that group.
    let script = format!(
        r#"cp -a /etc {t}/etc
install -D -m 0644 {ROOT}/config/tributary.toml {t}/etc/tributary/tributary.toml
# The unit's user (unless the machine has it: the package creates it, and keeps it when purged)
# and a web server's user in its group.
grep -q '^{group}:' {t}/etc/group || echo '{group}:x:64123:' >> {t}/etc/group
grep -q '^{user}:' {t}/etc/passwd || echo '{user}:x:64123:64123:Tributary:{state}:/usr/sbin/nologin' >> {t}/etc/passwd
sed -i 's/^\({group}:[^:]*:[^:]*:\)\(.*\)$/\1www-test/' {t}/etc/group
echo 'www-test:x:64124:64124:web server:/nonexistent:/usr/sbin/nologin' >> {t}/etc/passwd
echo 'www-test:x:64124:' >> {t}/etc/group
mount --bind {t}/etc /etc
mount -o remount,bind,ro /etc
mount -t tmpfs tmpfs /var/lib
# What systemd does for StateDirectory= and StateDirectoryMode= before starting the unit.
install -d -m {mode} -o {user} -g {group} {state}
umask {umask}
as_service() {{ setpriv --reuid={user} --regid={group} --init-groups "$@"; }}
as_service {bin} --config /etc/tributary/tributary.toml check
as_service {bin} --config /etc/tributary/tributary.toml render
# A web server in the unit's group reads the outputs.
setpriv --reuid=www-test --regid=www-test --init-groups head -c 100 {state}/public/all.atom > /dev/null
setpriv --reuid=www-test --regid=www-test --init-groups head -c 100 {state}/public/index.html > /dev/null
# The config cannot be changed by the service, and nothing else was needed from /etc.
if as_service touch /etc/tributary/tributary.toml 2>/dev/null; then echo "config writable"; exit 1; fi
echo layout-ok
"#
    );
    let Some(out) = as_root_in_mount_namespace(&script) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("layout-ok"),
        "the installed layout:\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("/etc/tributary/tributary.toml: 0 feeds, 2 outputs") && stdout.contains(": ok"),
        "check reports no problem: {stdout}"
    );
}

/// The Debian package installs as the README says: the binary in /usr/bin, the unit (which
/// `systemd-analyze verify` accepts), the man page, the conffile, the system user; `check` as
/// that user finds nothing wrong; a purge removes it again. Needs root, dpkg-deb and
/// systemd-analyze (CI has them); elsewhere it says it skipped.
#[test]
fn the_debian_package_installs_verifies_and_purges() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(_) = crate::support::as_root_in_mount_namespace("true") else {
        return;
    };
    for tool in ["dpkg-deb", "dpkg", "systemd-analyze", "runuser"] {
        if crate::support::require_tool(tool).is_none() {
            return;
        }
    }
    let out_dir = tempfile::tempdir().unwrap();
    let built = Command::new(format!("{ROOT}/packaging/deb/build"))
        // The test binary is a debug build, hundreds of MB: not worth compressing.
        .args([
            "--binary",
            env!("CARGO_BIN_EXE_tributary"),
            "--compression",
            "none",
            "--out",
        ])
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let deb = String::from_utf8(built.stdout).unwrap().trim().to_string();
    let run = |cmd: &[&str]| {
        let out = Command::new(cmd[0]).args(&cmd[1..]).output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, log) = run(&["dpkg", "-i", &deb]);
    assert!(ok, "dpkg -i: {log}");
    let checks = [
        run(&["/usr/bin/tributary", "--version"]),
        run(&[
            "systemd-analyze",
            "verify",
            "/lib/systemd/system/tributary.service",
        ]),
        run(&[
            "runuser",
            "-u",
            "tributary",
            "--",
            "/usr/bin/tributary",
            "-c",
            "/etc/tributary/tributary.toml",
            "check",
        ]),
        run(&[
            "sh",
            "-c",
            "zcat /usr/share/man/man1/tributary.1.gz | grep -q 'EXIT STATUS'",
        ]),
        run(&[
            "sh",
            "-c",
            "stat -c '%U:%G %a' /var/lib/tributary | grep -qx 'tributary:tributary 750'",
        ]),
        // A member's file dropped into conf.d is part of the config.
        run(&[
            "sh",
            "-c",
            "printf '[[feed]]\\nurl = \"http://127.0.0.9:9/feed.xml\"\\n' > /etc/tributary/conf.d/member.toml \
             && runuser -u tributary -- /usr/bin/tributary -c /etc/tributary/tributary.toml check; \
             status=$?; rm -f /etc/tributary/conf.d/member.toml; exit $status",
        ]),
    ];
    let (purged, purge_log) = run(&["dpkg", "--purge", "tributary"]);
    for (i, (ok, log)) in checks.iter().enumerate() {
        assert!(*ok, "check {i} after install: {log}");
    }
    assert!(checks[0].1.starts_with("tributary "), "{}", checks[0].1);
    assert!(
        checks[1].1.lines().all(|l| !l.contains("tributary.service")),
        "systemd-analyze verify: {}",
        checks[1].1
    );
    assert!(
        checks[2].1.contains(": ok"),
        "check as the service user: {}",
        checks[2].1
    );
    assert!(
        checks[5].1.contains("tributary.toml: 1 feed, 2 outputs"),
        "conf.d/member.toml is included: {}",
        checks[5].1
    );
    assert!(purged, "dpkg --purge: {purge_log}");
    assert!(!std::path::Path::new("/etc/tributary/conf.d").exists());
    assert!(!std::path::Path::new("/usr/bin/tributary").exists());
    assert!(!std::path::Path::new("/etc/tributary/tributary.toml").exists());
}
