//! The kernel calls of the container setup behind one narrow trait (youki's
//! `libcontainer/src/syscall` is the model): [`Linux`] makes them, [`Recorder`] records them
//! so the setup order is unit-tested without root.
use nix::mount::{MntFlags, MsFlags};
use std::cell::RefCell;
use std::io;
use std::path::Path;

/// What an existing path is, for replacing an image entry that is in the way of a mount point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    Dir,
    Other,
}

pub trait Syscall {
    fn mount(&self, source: Option<&str>, target: &Path, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> io::Result<()>;
    fn umount2(&self, target: &Path, flags: MntFlags) -> io::Result<()>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()>;
    fn chdir(&self, path: &Path) -> io::Result<()>;
    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// `lstat`: never follows a symlink.
    fn lstat(&self, path: &Path) -> io::Result<Option<Found>>;
    /// Remove a non-directory (in the overlay this leaves a whiteout).
    fn unlink(&self, path: &Path) -> io::Result<()>;
    /// Create a new file (`O_EXCL|O_NOFOLLOW`, so never through a symlink) with these bytes.
    fn create_file(&self, path: &Path, mode: u32, bytes: &[u8]) -> io::Result<()>;
    /// Write to an existing file (a sysctl under /proc/sys).
    fn write_existing(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    fn symlink(&self, target: &str, link: &Path) -> io::Result<()>;
    fn sethostname(&self, name: &str) -> io::Result<()>;
    /// Bring the loopback interface of the current network namespace up.
    fn loopback_up(&self) -> io::Result<()>;
}

pub struct Linux;

fn nix_io(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl Syscall for Linux {
    fn mount(&self, source: Option<&str>, target: &Path, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> io::Result<()> {
        nix::mount::mount(source, target, fstype, flags, data).map_err(nix_io)
    }
    fn umount2(&self, target: &Path, flags: MntFlags) -> io::Result<()> {
        nix::mount::umount2(target, flags).map_err(nix_io)
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        nix::unistd::pivot_root(new_root, put_old).map_err(nix_io)
    }
    fn chdir(&self, path: &Path) -> io::Result<()> {
        nix::unistd::chdir(path).map_err(nix_io)
    }
    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(mode).create(path)
    }
    fn lstat(&self, path: &Path) -> io::Result<Option<Found>> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => Ok(Some(Found::Dir)),
            Ok(_) => Ok(Some(Found::Other)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn unlink(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn create_file(&self, path: &Path, mode: u32, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).custom_flags(libc::O_NOFOLLOW).open(path)?;
        f.write_all(bytes)
    }
    fn write_existing(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        std::fs::OpenOptions::new().write(true).open(path)?.write_all(bytes)
    }
    fn symlink(&self, target: &str, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, link)
    }
    fn sethostname(&self, name: &str) -> io::Result<()> {
        nix::unistd::sethostname(name).map_err(nix_io)
    }
    fn loopback_up(&self) -> io::Result<()> {
        // SAFETY: a plain datagram socket and SIOC[GS]IFFLAGS on a zeroed ifreq naming "lo".
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut ifr: libc::ifreq = std::mem::zeroed();
            for (i, b) in b"lo\0".iter().enumerate() {
                ifr.ifr_name[i] = *b as libc::c_char;
            }
            let mut r = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr);
            if r == 0 {
                ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
                r = libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr);
            }
            let e = io::Error::last_os_error();
            libc::close(fd);
            if r != 0 {
                return Err(e);
            }
        }
        Ok(())
    }
}

/// The test double: records each call as one line, and answers `lstat` from a list of paths
/// that "exist" as non-directories.
#[derive(Default)]
pub struct Recorder {
    pub calls: RefCell<Vec<String>>,
    pub existing_files: Vec<String>,
}

impl Recorder {
    fn rec(&self, s: String) -> io::Result<()> {
        self.calls.borrow_mut().push(s);
        Ok(())
    }
    /// Index of the first call starting with `prefix` (panics when absent: a test helper).
    pub fn pos(&self, prefix: &str) -> usize {
        let calls = self.calls.borrow();
        calls.iter().position(|c| c.starts_with(prefix)).unwrap_or_else(|| panic!("no call {prefix:?} in {calls:#?}"))
    }
}

impl Syscall for Recorder {
    fn mount(&self, source: Option<&str>, target: &Path, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> io::Result<()> {
        self.rec(format!("mount {} {} {} {:?} {}", source.unwrap_or("-"), target.display(), fstype.unwrap_or("-"), flags, data.unwrap_or("-")))
    }
    fn umount2(&self, target: &Path, _flags: MntFlags) -> io::Result<()> {
        self.rec(format!("umount2 {}", target.display()))
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        self.rec(format!("pivot_root {} {}", new_root.display(), put_old.display()))
    }
    fn chdir(&self, path: &Path) -> io::Result<()> {
        self.rec(format!("chdir {}", path.display()))
    }
    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.rec(format!("mkdir {} {mode:o}", path.display()))
    }
    fn lstat(&self, path: &Path) -> io::Result<Option<Found>> {
        let p = path.display().to_string();
        Ok(self.existing_files.contains(&p).then_some(Found::Other))
    }
    fn unlink(&self, path: &Path) -> io::Result<()> {
        self.rec(format!("unlink {}", path.display()))
    }
    fn create_file(&self, path: &Path, _mode: u32, _bytes: &[u8]) -> io::Result<()> {
        self.rec(format!("create {}", path.display()))
    }
    fn write_existing(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.rec(format!("write {} {}", path.display(), String::from_utf8_lossy(bytes).trim()))
    }
    fn symlink(&self, target: &str, link: &Path) -> io::Result<()> {
        self.rec(format!("symlink {target} {}", link.display()))
    }
    fn sethostname(&self, name: &str) -> io::Result<()> {
        self.rec(format!("sethostname {name}"))
    }
    fn loopback_up(&self) -> io::Result<()> {
        self.rec("loopback_up".into())
    }
}
