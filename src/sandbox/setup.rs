//! The container's filesystem, built by init inside its new namespaces, in bubblewrap's order:
//! `/` slave → tmpfs scratch → overlay root → /proc, /dev, /sys → network → pivot_root and
//! detach the old root → hostname and generated /etc files (written only once nothing of the
//! host is reachable, so an image symlink like `/etc/hosts -> /etc/shadow` stays inside).
use super::syscall::{Found, Syscall};
use super::Network;
use nix::mount::{MntFlags, MsFlags};
use std::io;
use std::path::{Path, PathBuf};

pub struct RootPlan {
    pub rootfs: PathBuf,
    pub scratch: PathBuf,
    pub network: Network,
    pub hostname: String,
    pub resolv_conf: String,
    /// The app's working directory, created when the image lacks it (as Docker does).
    pub workdir: String,
}

/// Host device nodes bound into the container's /dev (mknod is not allowed in a user namespace).
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

fn ctx(what: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Build the root and enter it. Afterwards the process's `/` is the container's.
pub fn build_root(sys: &dyn Syscall, plan: &RootPlan) -> io::Result<()> {
    let none = None::<&str>;
    sys.mount(none, Path::new("/"), none, MsFlags::MS_SLAVE | MsFlags::MS_REC, none).map_err(|e| ctx("making / slave", Path::new("/"), e))?;
    let root = mount_overlay(sys, plan)?;
    mount_proc(sys, &root)?;
    mount_dev(sys, &root)?;
    mount_sys(sys, &root)?;
    if plan.network == Network::Isolated {
        isolated_network(sys, &root)?;
    }
    enter_root(sys, &root)?;
    write_identity(sys, plan)?;
    ensure_dirs(sys, &plan.workdir)
}

/// tmpfs on the scratch dir holding the upper/work dirs and the merged root.
fn mount_overlay(sys: &dyn Syscall, plan: &RootPlan) -> io::Result<PathBuf> {
    let s = &plan.scratch;
    sys.mount(Some("tmpfs"), s, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755"))
        .map_err(|e| ctx("mounting tmpfs on", s, e))?;
    for d in ["upper", "work", "root"] {
        sys.mkdir(&s.join(d), 0o755)?;
    }
    let root = s.join("root");
    // userxattr: overlay's own xattrs in the user.* namespace, as a user namespace requires.
    let data = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        plan.rootfs.display(),
        s.join("upper").display(),
        s.join("work").display()
    );
    sys.mount(Some("overlay"), &root, Some("overlay"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(&data))
        .map_err(|e| ctx("mounting the overlay root on", &root, e))?;
    Ok(root)
}

/// A top-level mount point of the new root: an image entry that is not a directory (a file, or
/// a symlink that would redirect the mount) is replaced by an empty directory.
fn mount_point(sys: &dyn Syscall, path: &Path) -> io::Result<()> {
    match sys.lstat(path)? {
        Some(Found::Dir) => Ok(()),
        Some(Found::Other) => {
            sys.unlink(path)?;
            sys.mkdir(path, 0o755)
        }
        None => sys.mkdir(path, 0o755),
    }
}

fn mount_proc(sys: &dyn Syscall, root: &Path) -> io::Result<()> {
    let p = root.join("proc");
    mount_point(sys, &p)?;
    let fl = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    sys.mount(Some("proc"), &p, Some("proc"), fl, None).map_err(|e| ctx("mounting /proc on", &p, e))
}

/// A tmpfs /dev holding only ours: bind mounts of the safe host devices, devpts, shm, fd links.
fn mount_dev(sys: &dyn Syscall, root: &Path) -> io::Result<()> {
    let dev = root.join("dev");
    mount_point(sys, &dev)?;
    sys.mount(Some("tmpfs"), &dev, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("mode=0755,size=65536k"))
        .map_err(|e| ctx("mounting tmpfs on", &dev, e))?;
    for d in DEVICES {
        let target = dev.join(d);
        sys.create_file(&target, 0o666, b"")?;
        let src = format!("/dev/{d}");
        sys.mount(Some(&src), &target, None, MsFlags::MS_BIND, None).map_err(|e| ctx("binding", &target, e))?;
    }
    let pts = dev.join("pts");
    sys.mkdir(&pts, 0o755)?;
    sys.mount(Some("devpts"), &pts, Some("devpts"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("newinstance,ptmxmode=0666,mode=620"))
        .map_err(|e| ctx("mounting devpts on", &pts, e))?;
    sys.symlink("pts/ptmx", &dev.join("ptmx"))?;
    let shm = dev.join("shm");
    sys.mkdir(&shm, 0o1777)?;
    let fl = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    sys.mount(Some("shm"), &shm, Some("tmpfs"), fl, Some("mode=1777,size=65536k")).map_err(|e| ctx("mounting tmpfs on", &shm, e))?;
    for (name, target) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
        sys.symlink(target, &dev.join(name))?;
    }
    Ok(())
}

/// /sys read-only: a fresh sysfs when we own the network namespace, else the host's, bound.
fn mount_sys(sys: &dyn Syscall, root: &Path) -> io::Result<()> {
    let p = root.join("sys");
    mount_point(sys, &p)?;
    let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if sys.mount(Some("sysfs"), &p, Some("sysfs"), ro, None).is_ok() {
        return Ok(());
    }
    sys.mount(Some("/sys"), &p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None).map_err(|e| ctx("binding /sys on", &p, e))?;
    sys.mount(None, &p, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | ro, None).map_err(|e| ctx("making read-only", &p, e))
}

/// Loopback up, and ports below 1024 bindable without capabilities (this namespace only).
fn isolated_network(sys: &dyn Syscall, root: &Path) -> io::Result<()> {
    sys.loopback_up().map_err(|e| io::Error::new(e.kind(), format!("bringing lo up: {e}")))?;
    let p = root.join("proc/sys/net/ipv4/ip_unprivileged_port_start");
    sys.write_existing(&p, b"0\n").map_err(|e| ctx("writing", &p, e))
}

/// pivot_root(".", ".") then detach the old root stacked under it: the host's tree is gone.
fn enter_root(sys: &dyn Syscall, root: &Path) -> io::Result<()> {
    sys.chdir(root)?;
    let dot = Path::new(".");
    sys.pivot_root(dot, dot).map_err(|e| ctx("pivot_root to", root, e))?;
    sys.umount2(dot, MntFlags::MNT_DETACH).map_err(|e| ctx("detaching the old root", root, e))?;
    sys.chdir(Path::new("/"))
}

fn write_identity(sys: &dyn Syscall, plan: &RootPlan) -> io::Result<()> {
    sys.sethostname(&plan.hostname)?;
    ensure_dirs(sys, "/etc")?;
    let hosts = format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n", plan.hostname);
    let files = [("/etc/hosts", hosts), ("/etc/hostname", format!("{}\n", plan.hostname)), ("/etc/resolv.conf", plan.resolv_conf.clone())];
    for (path, content) in files {
        let p = Path::new(path);
        if sys.lstat(p)?.is_some() {
            sys.unlink(p).map_err(|e| ctx("replacing", p, e))?;
        }
        sys.create_file(p, 0o644, content.as_bytes()).map_err(|e| ctx("writing", p, e))?;
    }
    Ok(())
}

/// `mkdir -p` inside the new root (after pivot_root, so symlinks stay inside it).
fn ensure_dirs(sys: &dyn Syscall, path: &str) -> io::Result<()> {
    let mut cur = PathBuf::from("/");
    for c in path.split('/').filter(|c| !c.is_empty()) {
        cur.push(c);
        if sys.lstat(&cur)?.is_none() {
            sys.mkdir(&cur, 0o755).map_err(|e| ctx("creating", &cur, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::syscall::Recorder;
    use super::*;

    fn plan(network: Network) -> RootPlan {
        RootPlan {
            rootfs: "/w/rootfs".into(),
            scratch: "/w/s".into(),
            network,
            hostname: "box".into(),
            resolv_conf: String::new(),
            workdir: "/".into(),
        }
    }

    #[test]
    fn setup_order_is_bubblewraps() {
        let r = Recorder::default();
        build_root(&r, &plan(Network::Isolated)).unwrap();
        let slave = r.pos("mount - / - MsFlags(MS_REC | MS_SLAVE)");
        let scratch = r.pos("mount tmpfs /w/s tmpfs");
        let overlay = r.pos("mount overlay /w/s/root overlay");
        let proc_ = r.pos("mount proc /w/s/root/proc");
        let dev = r.pos("mount tmpfs /w/s/root/dev");
        let null = r.pos("mount /dev/null /w/s/root/dev/null");
        let sys = r.pos("mount sysfs /w/s/root/sys");
        let lo = r.pos("loopback_up");
        let port = r.pos("write /w/s/root/proc/sys/net/ipv4/ip_unprivileged_port_start 0");
        let pivot = r.pos("pivot_root . .");
        let detach = r.pos("umount2 .");
        let host = r.pos("sethostname box");
        let hosts = r.pos("create /etc/hosts");
        let order = [slave, scratch, overlay, proc_, dev, null, sys, lo, port, pivot, detach, host, hosts];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?} in {:#?}", r.calls.borrow());
        assert!(r.calls.borrow()[overlay].contains("lowerdir=/w/rootfs,upperdir=/w/s/upper,workdir=/w/s/work,userxattr"));
        // Every mount of the new root happens before pivot_root: after it the host is gone.
        let calls = r.calls.borrow();
        assert!(calls[pivot..].iter().all(|c| !c.starts_with("mount")), "{calls:#?}");
    }

    #[test]
    fn host_network_leaves_loopback_and_sysctls_alone() {
        let r = Recorder::default();
        build_root(&r, &plan(Network::Host)).unwrap();
        assert!(r.calls.borrow().iter().all(|c| c != "loopback_up" && !c.starts_with("write ")));
    }

    #[test]
    fn image_entry_in_the_way_of_a_mount_point_is_replaced() {
        // A hostile image with `/proc -> /etc` must not redirect the proc mount.
        let r = Recorder { existing_files: vec!["/w/s/root/proc".into(), "/etc/hosts".into()], ..Default::default() };
        build_root(&r, &plan(Network::Isolated)).unwrap();
        let unlink = r.pos("unlink /w/s/root/proc");
        let mkdir = r.pos("mkdir /w/s/root/proc");
        assert!(unlink < mkdir && mkdir < r.pos("mount proc"));
        // /etc/hosts (maybe a symlink to the host's /etc/shadow) is removed, then created anew
        // only after the old root is detached.
        assert!(r.pos("umount2 .") < r.pos("unlink /etc/hosts"));
        assert!(r.pos("unlink /etc/hosts") < r.pos("create /etc/hosts"));
    }
}
