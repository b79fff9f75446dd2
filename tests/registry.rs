//! Registries end to end against Debian's `docker-registry` (CNCF distribution 2.8) started on
//! a free loopback port with a temporary storage dir, in three configurations (anonymous,
//! htpasswd, bearer token from a static token server). skopeo is the independent oracle; the
//! registry's access log shows what was (not) uploaded.
mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const MUSL: &str = "busybox-1.38.0-musl.oci";
const MUSL_TAG: &str = "busybox:1.38.0-musl";

#[derive(Clone, Copy, PartialEq)]
enum Auth {
    Anonymous,
    Htpasswd,
    Token,
}

const USER: &str = "slim";
const PASS: &str = "s3cret-pw";

struct Registry {
    child: Child,
    token_server: Option<Child>,
    host: String,
    dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        for c in [Some(&mut self.child), self.token_server.as_mut()].into_iter().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

impl Registry {
    /// None (skip) when docker-registry or skopeo is missing outside CI.
    fn start(auth: Auth) -> Option<Registry> {
        if !have_tool("docker-registry") || !have_tool("skopeo") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let (auth_cfg, token_server) = match auth {
            Auth::Anonymous => (String::new(), None),
            Auth::Htpasswd => (htpasswd(dir.path()), None),
            Auth::Token => {
                let (cfg, child) = token_auth(dir.path());
                (cfg, Some(child))
            }
        };
        let cfg = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: imgslim-test\n{auth_cfg}",
            dir.path().join("storage").display()
        );
        std::fs::write(dir.path().join("cfg.yml"), cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("cfg.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        wait_for_port(port);
        let xdg = dir.path().join("xdg");
        std::fs::create_dir_all(&xdg).unwrap();
        Some(Registry { child, token_server, host, dir })
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// (method, uri, status) of every request so far, from the access log.
    fn requests(&self) -> Vec<(String, String, u16)> {
        let log = std::fs::read_to_string(self.path("registry.log")).unwrap();
        log.lines()
            .filter_map(|l| {
                let q = l.split('"').nth(1)?;
                let mut it = q.split(' ');
                let (m, uri) = (it.next()?, it.next()?);
                let status = l.split('"').nth(2)?.split_whitespace().next()?.parse().ok()?;
                Some((m.to_string(), uri.to_string(), status))
            })
            .collect()
    }

    /// Blob uploads started in `repo` since request `from` (POST …/blobs/uploads/ without a mount).
    fn uploads(&self, repo: &str, from: usize) -> Vec<String> {
        let prefix = format!("/v2/{repo}/blobs/uploads/");
        self.requests()[from..].iter().filter(|(m, u, _)| m == "POST" && u.starts_with(&prefix) && !u.contains("mount=")).map(|r| r.1.clone()).collect()
    }

    fn skopeo(&self) -> Command {
        let mut c = Command::new("skopeo");
        c.env("XDG_RUNTIME_DIR", self.path("xdg")).env("REGISTRY_AUTH_FILE", self.path("skopeo-auth.json"));
        c
    }

    /// skopeo copy SRC DST with TLS off toward this registry and the test credentials.
    fn skopeo_copy(&self, extra: &[&str], src: &str, dst: &str) {
        let mut c = self.skopeo();
        c.args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"]).args(extra);
        if self.dir.path().join("htpasswd").exists() {
            let creds = format!("{USER}:{PASS}");
            if src.starts_with("docker://") {
                c.args(["--src-creds", &creds]);
            }
            if dst.starts_with("docker://") {
                c.args(["--dest-creds", &creds]);
            }
        }
        run_ok(c.args([src, dst]));
    }

    fn inspect_raw(&self, r: &str) -> Vec<u8> {
        let mut c = self.skopeo();
        c.args(["inspect", "--raw", "--tls-verify=false"]);
        if self.dir.path().join("htpasswd").exists() {
            c.args(["--creds", &format!("{USER}:{PASS}")]);
        }
        run_ok(c.arg(format!("docker://{}/{r}", self.host))).stdout
    }

    /// imgslim with a private blob cache and this registry as plain HTTP.
    fn imgslim(&self, args: &[&str]) -> Command {
        let mut c = imgslim();
        c.env("IMGSLIM_CACHE_DIR", self.path("cache")).env("DOCKER_CONFIG", self.path("docker")).env("XDG_RUNTIME_DIR", self.path("xdg"));
        c.env_remove("REGISTRY_AUTH_FILE");
        c.args(args).args(["--insecure-registry", &self.host]);
        c
    }

    /// Write `$DOCKER_CONFIG/config.json` with the test credentials for this registry.
    fn docker_login(&self, password: &str) {
        let dir = self.path("docker");
        std::fs::create_dir_all(&dir).unwrap();
        let auth = base64(format!("{USER}:{password}").as_bytes());
        let cfg = serde_json::json!({"auths": {&self.host: {"auth": auth}}});
        std::fs::write(dir.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    }

    fn r(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host)
    }
}

/// Standard base64 (no crate for it in the tests).
fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// htpasswd file (bcrypt, by Python's crypt) and the registry's auth section.
fn htpasswd(dir: &Path) -> String {
    let out = run_ok(Command::new("python3").args([
        "-W",
        "ignore",
        "-c",
        &format!("import crypt; print('{USER}:' + crypt.crypt('{PASS}', crypt.mksalt(crypt.METHOD_BLOWFISH)))"),
    ]));
    std::fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
    format!("auth:\n  htpasswd:\n    realm: imgslim-test\n    path: {}\n", dir.join("htpasswd").display())
}

fn b64url(b: &[u8]) -> String {
    base64(b).trim_end_matches('=').replace('+', "-").replace('/', "_")
}

/// Repositories the static token grants pull and push on.
const TOKEN_REPOS: &[&str] = &["bb", "sq", "tok"];

/// A self-signed RS256 key, one static JWT (with an `x5c` header) granting TOKEN_REPOS, served
/// by `python3 -m http.server` on loopback as the token realm; the registry's auth section.
fn token_auth(dir: &Path) -> (String, Child) {
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    run_ok(Command::new("openssl").args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=imgslim-token"]).arg("-keyout").arg(&key).arg("-out").arg(&cert));
    let der = run_ok(Command::new("openssl").args(["x509", "-outform", "DER", "-in"]).arg(&cert)).stdout;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [base64(&der)]});
    let access: Vec<Value> = TOKEN_REPOS.iter().map(|r| serde_json::json!({"type": "repository", "name": r, "actions": ["pull", "push"]})).collect();
    let claims = serde_json::json!({"iss": "imgslim-issuer", "sub": "", "aud": "imgslim-registry", "exp": now + 86400,
        "nbf": now - 60, "iat": now - 60, "jti": "imgslim-test", "access": access});
    let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    std::fs::write(dir.join("jwt-input"), &input).unwrap();
    let sig = run_ok(Command::new("openssl").args(["dgst", "-sha256", "-sign"]).arg(&key).arg(dir.join("jwt-input"))).stdout;
    let token = format!("{input}.{}", b64url(&sig));
    let srv = dir.join("tokensrv");
    std::fs::create_dir_all(&srv).unwrap();
    std::fs::write(srv.join("token"), serde_json::json!({"token": token, "access_token": token, "expires_in": 3600}).to_string()).unwrap();
    let port = free_port();
    let child = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
        .arg(&srv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    let cfg = format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{port}/token\n    service: imgslim-registry\n    issuer: imgslim-issuer\n    rootcertbundle: {}\n",
        cert.display()
    );
    (cfg, child)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The digest index.json of a layout names.
fn top_digest(layout: &Path) -> String {
    let idx: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    idx["manifests"][0]["digest"].as_str().unwrap().to_string()
}

fn musl_src() -> String {
    format!("oci:{}:{MUSL_TAG}", shared_images().join(MUSL).display())
}

/// The manifest digest imgslim printed: `pushed REF@sha256:…`.
fn pushed_digest(o: &std::process::Output) -> String {
    let s = stdout(o);
    let line = s.lines().find(|l| l.starts_with("pushed ")).unwrap_or_else(|| panic!("no 'pushed' line in {s}"));
    line.rsplit('@').next().unwrap().to_string()
}

/// What skopeo pushes, imgslim pulls (digest-verified, cached): the squash of the pulled image
/// is byte-identical to the squash of the local original, a bare reference works like
/// docker://, and a second run downloads nothing (no blob GET in the registry log).
#[test]
fn pull_from_registry_caches_blobs() {
    let Some(reg) = Registry::start(Auth::Anonymous) else { return };
    reg.skopeo_copy(&[], &musl_src(), &format!("docker://{}", reg.r("bb:1")));
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("local");
    run_ok(imgslim().args(["squash", shared_images().join(MUSL).to_str().unwrap(), "--format", "oci", "-o"]).arg(&local));

    let n0 = reg.requests().len();
    let remote = work.path().join("remote");
    let o = run_ok(&mut reg.imgslim(&["squash", &format!("docker://{}", reg.r("bb:1")), "--format", "oci", "-o", remote.to_str().unwrap()]));
    let blob_gets = |from: usize| reg.requests()[from..].iter().filter(|(m, u, _)| m == "GET" && u.contains("/blobs/sha256:")).count();
    assert_eq!(blob_gets(n0), 2, "config and layer downloaded once: {}", stderr(&o));
    assert_eq!(top_digest(&local), top_digest(&remote), "same squash from the registry as from the file");
    let cached = std::fs::read_dir(reg.path("cache/blobs/sha256")).unwrap().count();
    assert_eq!(cached, 3, "manifest, config and layer cached");

    let n1 = reg.requests().len();
    let again = work.path().join("again");
    let o = run_ok(&mut reg.imgslim(&["squash", &reg.r("bb:1"), "--format", "oci", "-o", again.to_str().unwrap()]));
    assert_eq!(blob_gets(n1), 0, "second run downloads no blob: {}", stderr(&o));
    assert!(stderr(&o).contains("0 blob(s) downloaded"), "{}", stderr(&o));
    assert_eq!(top_digest(&remote), top_digest(&again));

    let o = run_ok(imgslim().env("IMGSLIM_CACHE_DIR", reg.path("cache")).args(["cache", "prune"]));
    assert!(stdout(&o).contains("pruned 3 blob(s)"), "{}", stdout(&o));
    assert_eq!(std::fs::read_dir(reg.path("cache/blobs/sha256")).unwrap().count(), 0);
}

/// What imgslim pushes, skopeo copies back byte-identically: the printed digest is the
/// registry's, the manifest and blobs skopeo fetches are the bytes imgslim wrote locally for
/// the same input. Pushing again uploads nothing; pushing to a sibling repository mounts.
#[test]
fn push_round_trip_and_no_reupload() {
    let Some(reg) = Registry::start(Auth::Anonymous) else { return };
    let work = tempfile::tempdir().unwrap();
    let src = shared_images().join(MUSL);
    let local = work.path().join("local");
    run_ok(imgslim().args(["squash", src.to_str().unwrap(), "--format", "oci", "-o"]).arg(&local));

    let n0 = reg.requests().len();
    let target = format!("docker://{}", reg.r("sq:1"));
    let o = run_ok(&mut reg.imgslim(&["squash", src.to_str().unwrap(), "-o", &target]));
    let digest = pushed_digest(&o);
    assert_eq!(reg.uploads("sq", n0).len(), 2, "config and layer uploaded: {}", stderr(&o));
    let raw = reg.inspect_raw("sq:1");
    assert_eq!(format!("sha256:{}", sha256_hex(&raw)), digest, "printed digest is the registry's");
    let idx: Value = serde_json::from_slice(&std::fs::read(local.join("index.json")).unwrap()).unwrap();
    let local_digest = idx["manifests"][0]["digest"].as_str().unwrap();
    assert_eq!(digest, local_digest, "the pushed manifest is the one written locally (exact bytes)");

    let back = work.path().join("back");
    reg.skopeo_copy(&["--preserve-digests"], &target, &format!("oci:{}:x", back.display()));
    for e in std::fs::read_dir(local.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let copied = std::fs::read(back.join("blobs/sha256").join(e.file_name())).unwrap();
        assert_eq!(copied, std::fs::read(e.path()).unwrap(), "blob {:?} differs after skopeo copy", e.file_name());
    }

    let n1 = reg.requests().len();
    let o = run_ok(&mut reg.imgslim(&["squash", src.to_str().unwrap(), "-o", &target]));
    assert_eq!(pushed_digest(&o), digest, "deterministic");
    assert!(reg.uploads("sq", n1).is_empty(), "no blob re-uploaded: {}", stderr(&o));
    assert!(stderr(&o).contains("0 blob(s) uploaded, 0 mounted, 2 already there"), "{}", stderr(&o));

    // Squashing the pushed image again gives the same layer: it is mounted from sq into sq2.
    let n2 = reg.requests().len();
    let o = run_ok(&mut reg.imgslim(&["squash", &target, "-o", &format!("docker://{}", reg.r("sq2:1"))]));
    let mounts: Vec<_> = reg.requests()[n2..].iter().filter(|(m, u, s)| m == "POST" && u.contains("mount=") && u.contains("from=sq") && *s == 201).cloned().collect();
    assert_eq!(mounts.len(), 1, "the layer is mounted from sq: {}", stderr(&o));
    assert_eq!(reg.uploads("sq2", n2).len(), 1, "only the new config is uploaded: {}", stderr(&o));
}

/// An interrupted push (here: a layer blob missing from the layout mid-way) publishes nothing
/// under the tag; rerunning it uploads only what is missing and then moves the tag.
#[test]
fn interrupted_push_resumes_without_publishing_half() {
    let Some(reg) = Registry::start(Auth::Anonymous) else { return };
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("img");
    run_ok(imgslim().args(["squash", shared_images().join(MUSL).to_str().unwrap(), "--format", "oci", "-o"]).arg(&layout));
    let man: Value = {
        let idx: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let d = idx["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(d)).unwrap()).unwrap()
    };
    let layer = layout.join("blobs/sha256").join(man["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    let aside = work.path().join("layer-aside");
    std::fs::rename(&layer, &aside).unwrap();
    let opts = imgslim::registry::Options {
        insecure: vec![reg.host.clone()],
        cache: Some(imgslim::registry::Cache { dir: reg.path("cache"), max_bytes: 1 << 30 }),
        mount_from: None,
    };
    let err = imgslim::registry::push(&layout, &reg.r("half:1"), &opts).err().expect("push without the layer fails");
    assert!(err.to_string().contains(layer.file_name().unwrap().to_str().unwrap()), "names the missing blob: {err}");
    assert_eq!(reg.uploads("half", 0).len(), 1, "the config went up before the interruption");
    let mut c = reg.skopeo();
    let o = run(c.args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{}", reg.r("half:1"))]));
    assert!(!o.status.success(), "nothing is published under the tag after an interrupted push");

    std::fs::rename(&aside, &layer).unwrap();
    let n = reg.requests().len();
    let r = imgslim::registry::push(&layout, &reg.r("half:1"), &opts).unwrap();
    assert_eq!((r.uploaded, r.skipped), (1, 1), "the rerun uploads only the layer");
    assert_eq!(reg.uploads("half", n).len(), 1);
    assert_eq!(format!("sha256:{}", sha256_hex(&reg.inspect_raw("half:1"))), r.digest.to_string());
}

/// htpasswd: no credentials and wrong credentials fail with one line naming the registry and
/// the reason; $DOCKER_CONFIG auths, a credential helper and podman's auth.json all work.
#[test]
fn htpasswd_auth_sources_and_failures() {
    let Some(reg) = Registry::start(Auth::Htpasswd) else { return };
    reg.skopeo_copy(&[], &musl_src(), &format!("docker://{}", reg.r("bb:1")));
    let inspect = |cmd: &mut Command| run(cmd);

    let o = inspect(&mut reg.imgslim(&["inspect", &reg.r("bb:1")]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(&format!("registry {}", reg.host)) && err.contains("authentication failed") && err.contains("no credentials configured"), "{err}");

    reg.docker_login("wrong-password");
    let o = inspect(&mut reg.imgslim(&["inspect", &reg.r("bb:1")]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(&format!("registry {}", reg.host)) && err.contains("were rejected"), "{err}");

    reg.docker_login(PASS);
    run_ok(&mut reg.imgslim(&["inspect", &reg.r("bb:1")]));

    // A credential helper named in credHelpers.
    let bin = reg.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-imgslimtest");
    std::fs::write(&helper, format!("#!/bin/sh\ncat >/dev/null\necho '{{\"Username\":\"{USER}\",\"Secret\":\"{PASS}\"}}'\n")).unwrap();
    run_ok(Command::new("chmod").arg("755").arg(&helper));
    let cfg = serde_json::json!({"credHelpers": {&reg.host: "imgslimtest"}});
    std::fs::write(reg.path("docker/config.json"), cfg.to_string()).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    run_ok(reg.imgslim(&["squash", &reg.r("bb:1"), "-o", &format!("docker://{}", reg.r("sq:helper"))]).env("PATH", &path));

    // podman's auth.json ($REGISTRY_AUTH_FILE), with no docker config at all.
    std::fs::remove_file(reg.path("docker/config.json")).unwrap();
    let auth_json = reg.path("podman-auth.json");
    let a = serde_json::json!({"auths": {&reg.host: {"auth": base64(format!("{USER}:{PASS}").as_bytes())}}});
    std::fs::write(&auth_json, a.to_string()).unwrap();
    run_ok(reg.imgslim(&["inspect", &reg.r("sq:helper")]).env("REGISTRY_AUTH_FILE", &auth_json));
}

/// Bearer tokens from a static token server: imgslim pulls what skopeo pushed and pushes what
/// skopeo then reads, anonymously through the token flow.
#[test]
fn token_auth_round_trip() {
    let Some(reg) = Registry::start(Auth::Token) else { return };
    reg.skopeo_copy(&[], &musl_src(), &format!("docker://{}", reg.r("bb:1")));
    let o = run_ok(&mut reg.imgslim(&["squash", &reg.r("bb:1"), "-o", &format!("docker://{}", reg.r("tok:1"))]));
    let raw = reg.inspect_raw("tok:1");
    assert_eq!(format!("sha256:{}", sha256_hex(&raw)), pushed_digest(&o));
    // A repository the token does not grant: a clear refusal.
    let o = run(&mut reg.imgslim(&["inspect", &reg.r("other:1")]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!("registry {}", reg.host)), "{}", stderr(&o));
}

/// podman in its own storage (vfs) and runc; these flags make it run on these machines.
fn podman(dir: &Path) -> Command {
    let mut c = Command::new("podman");
    c.env("XDG_RUNTIME_DIR", dir.join("xdg"))
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("runroot"))
        .args(["--storage-driver", "vfs", "--runtime", "runc"]);
    c
}

fn podman_run(dir: &Path, image: &str, args: &[&str]) -> String {
    let o = run_ok(podman(dir).args(["run", "--rm", "--network", "host", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096", image]).args(args));
    stdout(&o)
}

/// `podman pull` of what imgslim pushed, and `podman run` of the slimmed image answering like
/// the original; `podman load` of imgslim's docker-archive and oci-archive outputs.
#[test]
fn podman_pulls_loads_and_runs_what_imgslim_writes() {
    if !have_tool("podman") {
        return;
    }
    let Some(reg) = Registry::start(Auth::Anonymous) else { return };
    let pod = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(pod.path().join("xdg")).unwrap();
    let src = shared_images().join(MUSL);
    let probe = ["/bin/busybox", "sh", "-c", "echo hello; ls /bin | wc -l"];
    reg.skopeo_copy(&[], &musl_src(), &format!("docker://{}", reg.r("orig:1")));
    run_ok(podman(pod.path()).args(["pull", "--tls-verify=false", &reg.r("orig:1")]));
    let want = podman_run(pod.path(), &reg.r("orig:1"), &probe);
    assert!(want.starts_with("hello"), "{want}");

    let o = run_ok(&mut reg.imgslim(&["slim", src.to_str().unwrap(), "--keep", "/bin/**", "-o", &format!("docker://{}", reg.r("slim:1"))]));
    let digest = pushed_digest(&o);
    run_ok(podman(pod.path()).args(["pull", "--tls-verify=false", &reg.r("slim:1")]));
    let inspected = stdout(&run_ok(podman(pod.path()).args(["image", "inspect", "--format", "{{.Digest}}", &reg.r("slim:1")])));
    assert_eq!(inspected.trim(), digest, "podman sees the digest imgslim printed");
    assert_eq!(podman_run(pod.path(), &reg.r("slim:1"), &probe), want, "the slimmed image answers like the original");

    for (fmt, transport) in [("docker-archive", "docker-archive"), ("oci-archive", "oci-archive")] {
        let tar = pod.path().join(format!("slim-{fmt}.tar"));
        run_ok(imgslim().args(["slim", src.to_str().unwrap(), "--keep", "/bin/**", "--format", fmt, "--tag", &format!("slim-{fmt}:1"), "-o"]).arg(&tar));
        let o = run_ok(podman(pod.path()).args(["load", "-i"]).arg(&tar));
        assert!(stdout(&o).contains("Loaded image"), "{transport}: {}", stdout(&o));
        let name = stdout(&o).lines().find_map(|l| l.strip_prefix("Loaded image: ").or_else(|| l.strip_prefix("Loaded image(s): "))).unwrap().trim().to_string();
        assert_eq!(podman_run(pod.path(), &name, &probe), want, "{fmt} loads and runs");
    }
}

/// The multi-arch round trip: skopeo copy --all of a two-platform index to the registry, slim
/// --platform all from the registry, push; skopeo inspects both platforms and the arm64 one
/// runs under qemu-aarch64-static.
#[test]
fn multiarch_round_trip() {
    let Some(reg) = Registry::start(Auth::Anonymous) else { return };
    if !have_tool("qemu-aarch64-static") || !have_tool("umoci") {
        return;
    }
    let src = shared_images().join("busybox-1.35-debian-multiarch.oci");
    reg.skopeo_copy(&["--all"], &format!("oci:{}:latest", src.display()), &format!("docker://{}", reg.r("ma:1")));
    let o = run_ok(&mut reg.imgslim(&["slim", &reg.r("ma:1"), "--platform", "all", "--keep", "/bin/**", "-o", &format!("docker://{}", reg.r("ma-slim:1"))]));
    let digest = pushed_digest(&o);
    let raw = reg.inspect_raw("ma-slim:1");
    assert_eq!(format!("sha256:{}", sha256_hex(&raw)), digest);
    let index: Value = serde_json::from_slice(&raw).unwrap();
    let archs: Vec<&str> = index["manifests"].as_array().unwrap().iter().map(|m| m["platform"]["architecture"].as_str().unwrap()).collect();
    assert_eq!(archs, ["amd64", "arm64"], "{index}");

    let work = tempfile::tempdir().unwrap();
    for arch in ["amd64", "arm64"] {
        let mut c = reg.skopeo();
        let o = run_ok(c.args(["inspect", "--tls-verify=false", "--override-arch", arch, &format!("docker://{}", reg.r("ma-slim:1"))]));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["Architecture"], arch);
        let orig = std::fs::read(src.join("blobs/sha256").join(index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:")));
        assert!(orig.is_err(), "the slimmed manifests are new ones");
        let layout = work.path().join(arch);
        reg.skopeo_copy(&["--override-arch", arch], &format!("docker://{}", reg.r("ma-slim:1")), &format!("oci:{}:x", layout.display()));
        let rootfs = umoci_unpack(&layout, &work.path().join(format!("{arch}-bundle")));
        let busybox = rootfs.join("bin/busybox");
        let out = if arch == "arm64" {
            run_ok(Command::new("qemu-aarch64-static").arg(&busybox).args(["echo", "hello-arm64"]))
        } else {
            run_ok(Command::new(&busybox).args(["echo", "hello-amd64"]))
        };
        assert_eq!(stdout(&out).trim(), format!("hello-{arch}"));
    }
}

/// Runs sharing one blob cache and one work area ($TMPDIR) do not corrupt each other, even
/// when each prunes the cache down to its bound right after its pull (IMGSLIM_CACHE_MAX=1):
/// every run finishes with the same image as a lone run, every cached blob still hashes to
/// its name, and no temporary file is left in the work area or the cache.
#[test]
fn concurrent_pulls_sharing_the_cache_and_work_area() {
    let Some(reg) = Registry::start(Auth::Anonymous) else { return };
    let glibc = format!("oci:{}:busybox:1.38.0-glibc", shared_images().join("busybox-1.38.0-glibc.oci").display());
    reg.skopeo_copy(&[], &musl_src(), &format!("docker://{}", reg.r("musl:1")));
    reg.skopeo_copy(&[], &glibc, &format!("docker://{}", reg.r("glibc:1")));
    let work = tempfile::tempdir().unwrap();
    let tmp = work.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let squash = |image: &str, out: &Path| {
        let mut c = reg.imgslim(&["squash", &reg.r(image), "--format", "oci", "-o", out.to_str().unwrap()]);
        c.env("TMPDIR", &tmp).stderr(Stdio::piped());
        c
    };
    let want: Vec<String> = ["musl:1", "glibc:1"]
        .iter()
        .map(|i| {
            let out = work.path().join(format!("alone-{}", i.replace(':', "-")));
            run_ok(&mut squash(i, &out));
            top_digest(&out)
        })
        .collect();
    for (round, bound) in ["10G", "1", "1", "1"].iter().enumerate() {
        let kids: Vec<(usize, PathBuf, Child)> = (0..8)
            .map(|k| {
                let out = work.path().join(format!("r{round}-{k}"));
                let child = squash(["musl:1", "glibc:1"][k % 2], &out).env("IMGSLIM_CACHE_MAX", bound).spawn().unwrap();
                (k % 2, out, child)
            })
            .collect();
        for (which, out, child) in kids {
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success(), "round {round} (bound {bound}): {}", stderr(&o));
            assert_eq!(top_digest(&out), want[which], "round {round}: the same image as a lone run");
        }
        for e in std::fs::read_dir(reg.path("cache/blobs/sha256")).unwrap() {
            let p = e.unwrap().path();
            assert_eq!(sha256_hex(&std::fs::read(&p).unwrap()), p.file_name().unwrap().to_str().unwrap(), "a cached blob hashes to its name");
        }
        let temps: Vec<_> = std::fs::read_dir(reg.path("cache/tmp")).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        assert!(temps.is_empty(), "round {round}: temp files left in the cache: {temps:?}");
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "round {round}: the shared work area is left clean");
    }
}

/// A TCP proxy in front of the registry that forwards responses in 64 KiB chunks with a pause
/// between them (so a signal lands mid-blob), counts the response bytes, and, when `drop_after`
/// is set, closes both sockets once that many response bytes went through.
struct SlowProxy {
    port: u16,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl SlowProxy {
    fn start(upstream: &str, drop_after: Option<u64>) -> SlowProxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (up, counter) = (upstream.to_string(), sent.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(&up) else { continue };
                let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                });
                let counter = counter.clone();
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let (mut server, mut client) = (server, client);
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let n = match server.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let total = counter.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                        let keep = match drop_after {
                            Some(limit) if total > limit => n - (total - limit).min(n as u64) as usize,
                            _ => n,
                        };
                        if client.write_all(&buf[..keep]).is_err() || keep < n {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        SlowProxy { port, sent }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::SeqCst)
    }
}

const BIG_LAYER: usize = 4 << 20;

/// Push an image with one layer of BIG_LAYER incompressible bytes as `big:1`.
fn push_big_image(reg: &Registry, dir: &Path) {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let data: Vec<u8> = (0..BIG_LAYER)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    let img = oci_layout(dir, &[layer(&[E::Dir("data/", 0o755), E::File("data/blob", 0o644, &data)])], serde_json::json!({"Cmd": ["/bin/true"]}));
    reg.skopeo_copy(&[], &format!("oci:{}:latest", img.display()), &format!("docker://{}", reg.r("big:1")));
}

/// imgslim through the proxy: the proxy's address is the registry the reference names.
fn via_proxy(reg: &Registry, proxy: &SlowProxy, args: &[&str], tmp: &Path) -> Command {
    let mut c = reg.imgslim(args);
    c.args(["--insecure-registry", &proxy.host()]).env("TMPDIR", tmp).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Every file in the cache's blob store hashes to its name, and no temp file is left.
fn assert_cache_verified(cache: &Path, what: &str) -> usize {
    let tmp = cache.join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{what}: temp files left in the cache: {left:?}");
    let mut n = 0;
    for e in std::fs::read_dir(cache.join("blobs/sha256")).into_iter().flatten().flatten() {
        let bytes = std::fs::read(e.path()).unwrap();
        assert_eq!(sha256_hex(&bytes), e.file_name().to_str().unwrap(), "{what}: unverified blob in the cache");
        n += 1;
    }
    n
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default()
}

/// A registry holding `big:1`, a $TMPDIR and an output directory, for interrupted pulls.
struct BigPull {
    reg: Registry,
    _t: tempfile::TempDir,
    tmp: PathBuf,
    outdir: PathBuf,
    out: PathBuf,
}

impl BigPull {
    fn start() -> Option<BigPull> {
        let reg = Registry::start(Auth::Anonymous)?;
        let t = tempfile::tempdir().unwrap();
        push_big_image(&reg, &t.path().join("img"));
        let (tmp, outdir) = (t.path().join("tmp"), t.path().join("out"));
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::create_dir_all(&outdir).unwrap();
        let out = outdir.join("slim.tar");
        Some(BigPull { reg, _t: t, tmp, outdir, out })
    }

    /// `slim` of `big:1` through the proxy.
    fn slim_via(&self, proxy: &SlowProxy) -> Command {
        let src = format!("docker://{}/big:1", proxy.host());
        via_proxy(&self.reg, proxy, &["slim", &src, "-o", self.out.to_str().unwrap()], &self.tmp)
    }

    /// Nothing at OUT, nothing beside it or in $TMPDIR, no partial blob in the cache.
    fn assert_nothing_left(&self, what: &str) {
        assert!(!self.out.exists(), "{what}: nothing at OUT");
        assert_eq!(leftovers(&self.outdir), Vec::<String>::new(), "{what}: temp files beside OUT");
        assert_eq!(leftovers(&self.tmp), Vec::<String>::new(), "{what}: the work area is left behind");
        assert_cache_verified(&self.reg.path("cache"), what);
    }

    /// A pull straight from the registry succeeds, and the cache holds exactly the image's
    /// three blobs, each matching its digest.
    fn assert_healthy_pull_works(&self) {
        let o = run_ok(self.reg.imgslim(&["slim", &self.reg.r("big:1"), "-o", self.out.to_str().unwrap()]).env("TMPDIR", &self.tmp));
        assert!(self.out.exists(), "{}", stderr(&o));
        assert_eq!(assert_cache_verified(&self.reg.path("cache"), "after a healthy pull"), 3, "manifest, config and layer cached");
    }
}

/// SIGINT and SIGTERM while the layer blob is half downloaded: 130/143, nothing at OUT, no
/// temp file beside OUT or in $TMPDIR, no partial blob in the cache; the next pull succeeds
/// and every cached blob matches its digest.
#[test]
fn signal_during_blob_download_leaves_nothing() {
    let Some(b) = BigPull::start() else { return };
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let proxy = SlowProxy::start(&b.reg.host, None);
        let child = b.slim_via(&proxy).spawn().unwrap();
        let start = std::time::Instant::now();
        while proxy.sent() < 512 << 10 {
            assert!(start.elapsed().as_secs() < 15, "the download never started");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let o = child.wait_with_output().unwrap();
        assert!(proxy.sent() < BIG_LAYER as u64, "the signal landed after the blob was through");
        assert_eq!(o.status.code(), Some(128 + sig), "{}", stderr(&o));
        b.assert_nothing_left(&format!("after signal {sig}"));
    }
    b.assert_healthy_pull_works();
}

/// The connection drops mid-blob: one error line naming the blob and the registry, exit 1,
/// nothing at OUT, and the cache is intact (a healthy pull afterwards succeeds).
#[test]
fn dropped_connection_mid_blob_is_one_clear_error() {
    let Some(b) = BigPull::start() else { return };
    let proxy = SlowProxy::start(&b.reg.host, Some(1 << 20));
    let o = b.slim_via(&proxy).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().filter(|l| l.contains("error")).count(), 1, "one error line: {err}");
    let line = err.lines().rfind(|l| l.contains("error")).unwrap_or_else(|| panic!("no error line: {err}"));
    let m: Value = serde_json::from_slice(&b.reg.inspect_raw("big:1")).unwrap();
    let layer_digest = m["layers"][0]["digest"].as_str().unwrap();
    assert!(line.contains(layer_digest) && line.contains(&format!("registry {}", proxy.host())), "names the blob and the registry: {line}");
    assert!(line.contains("broke off after"), "says the transfer broke off: {line}");
    b.assert_nothing_left("after the drop");
    b.assert_healthy_pull_works();
}
