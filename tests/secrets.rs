//! Secrets in the three places (history, Env, files): `inspect` reports each with a masked
//! prefix; `slim --scrub-secrets` leaves none, checked by grepping the output's config blob,
//! its layer tar and its `umoci unpack`ed rootfs; `--strict` refuses an image that keeps them;
//! the acceptance images give no finding.
mod common;
use common::*;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::path::Path;

const GH_PAT: &str = "ghp_Zr4bQp1mX9aT7kLw3nV8cY2dF6hJ0sE5uG1i";
const GH_PAT_ENV: &str = "ghp_Hq8sLm2Xv5Tz9Wc4Nb7Kd1Rf6Yg3Pj0Ea2Uo";
const NPM: &str = "npm_Q7vZk2LmX9pR4tW8bN3cY6dF1hJ5sA0eGuKi";
const NPM_FILE: &str = "npm_W4xYq8NcT2vBz6Lm1Hk9Rp3Jf7Sd5Ga0UeQo";
const NPM_KEPT: &str = "npm_K3pTm9Vw2Xc7Bq4Lz8Nd1Rf5Hj6Sg0YaEuWo";
const AWS_ID: &str = "AKIAZ7VRSQ5TJN2LKXQM";
const AWS_SECRET: &str = "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";
const GLPAT: &str = "glpat-Xk3v9QpL2mZ7tR4wN8bY";
const PYPI: &str = "pypi-AgEIcHlwaS5vcmcCJGI4YjE2ZDQ3LTk2NjItNGY1Zi1hNDY2LWFkMzE3NDY0NzM3MQACKlszLCJmNTg2";
const URL_PW: &str = "Pa55w0rdXyz9";
const DB_PW: &str = "hunter2-but-longer";
const NETRC_PW: &str = "Sup3rS3cretNetrc";
const DOCKER_AUTH: &str = "ZGVwbG95OnMzY3IzdC1yZWdpc3RyeQ==";
const KUBE_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6IkFCQyJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJlLWJ5dGVz";
const DOTENV_PW: &str = "correcthorsebatterystaple";
const GPG_KEY: &str = "A035C8C19219BA821ECEA86B64E628F8D684696D";

/// A key-shaped body (hex lines of a hash chain): the scanner judges shape, not validity.
fn key_body(seed: &str) -> String {
    let mut h = Sha256::digest(seed.as_bytes()).to_vec();
    let mut lines = Vec::new();
    for _ in 0..12 {
        h = Sha256::digest(&h).to_vec();
        lines.push(h.iter().map(|b| format!("{b:02x}")).collect::<String>());
    }
    lines.join("\n")
}

/// Every secret value planted, with where it is (for failure messages).
fn planted() -> Vec<(&'static str, String)> {
    let mut v: Vec<(&str, String)> = [
        ("history GH_PAT", GH_PAT),
        ("Env GH_PAT", GH_PAT_ENV),
        ("history NPM", NPM),
        (".npmrc", NPM_FILE),
        ("history AWS id", AWS_ID),
        ("history AWS secret", AWS_SECRET),
        ("history glpat", GLPAT),
        ("history pypi", PYPI),
        ("history url", URL_PW),
        ("Env DB_PASSWORD", DB_PW),
        (".netrc", NETRC_PW),
        ("docker config", DOCKER_AUTH),
        ("kubeconfig", KUBE_TOKEN),
        (".env", DOTENV_PW),
    ]
    .into_iter()
    .map(|(w, s)| (w, s.to_string()))
    .collect();
    // One line of each key body is enough to show the key is there.
    v.push(("PEM key", key_body("pem").lines().nth(3).unwrap_or("").to_string()));
    v.push(("OpenSSH key", key_body("ssh").lines().nth(3).unwrap_or("").to_string()));
    v
}

fn secret_layer() -> Vec<u8> {
    let pem = format!("-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n", key_body("pem"));
    let ssh = format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n", key_body("ssh"));
    let cert = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", key_body("cert"));
    let npmrc = format!("//registry.npmjs.org/:_authToken={NPM_FILE}\n");
    let kept = format!("//registry.npmjs.org/:_authToken={NPM_KEPT}\n");
    let pypirc = format!("[pypi]\nusername = __token__\npassword = {PYPI}\n");
    let gitcred = format!("https://oauth2:{GLPAT}@gitlab.example.com\n");
    let netrc = format!("machine example.com login deploy password {NETRC_PW}\n");
    let docker = format!("{{\"auths\":{{\"registry.example.com\":{{\"auth\":\"{DOCKER_AUTH}\"}}}}}}\n");
    let aws = format!("[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n");
    let kube = format!("apiVersion: v1\nkind: Config\nusers:\n- name: ci\n  user:\n    token: {KUBE_TOKEN}\n");
    let dotenv = format!("DATABASE_PASSWORD={DOTENV_PW}\nLOG_LEVEL=info\n");
    let files: Vec<(&str, String)> = vec![
        ("root/.npmrc", npmrc),
        ("root/.pypirc", pypirc),
        ("root/.git-credentials", gitcred),
        ("root/.netrc", netrc),
        ("root/.docker/config.json", docker),
        ("root/.aws/credentials", aws),
        ("root/.kube/config", kube),
        ("root/.ssh/id_ed25519", ssh),
        ("etc/ssl/private/server.key", pem),
        ("app/.env", dotenv),
        ("app/.git/HEAD", "ref: refs/heads/main\n".into()),
        ("app/.git/config", "[core]\n\tbare = false\n".into()),
        ("app/keepme/.npmrc", kept),
        // Not secrets: a template, a public certificate, an .npmrc naming only a registry.
        ("app/.env.example", "DATABASE_PASSWORD=changeme-in-production\n".into()),
        ("etc/ssl/certs/server.pem", cert),
        ("srv/.npmrc", "registry=https://registry.npmjs.org/\n".into()),
    ];
    let dirs = ["root/", "root/.docker/", "root/.aws/", "root/.kube/", "root/.ssh/", "etc/ssl/", "etc/ssl/private/", "etc/ssl/certs/", "app/", "app/.git/", "app/keepme/", "srv/"];
    let mut entries: Vec<E> = dirs.iter().map(|d| E::Dir(d, 0o755)).collect();
    entries.extend(files.iter().map(|(p, c)| E::File(p, 0o600, c.as_bytes())));
    layer(&entries)
}

fn secret_image(dir: &Path) -> std::path::PathBuf {
    let base = first_layer(&shared_images().join("busybox-1.38.0-musl.oci"));
    let t = "2024-01-01T00:00:00Z";
    let history = vec![
        json!({"created": t, "created_by": "/bin/sh -c #(nop) ADD file:4b03b5f551e3fbdf47ec609712007327828f7530cc3455c43bbcdcaf449a75a9 in / "}),
        json!({"created": t, "created_by": "ARG NPM_TOKEN", "comment": "buildkit.dockerfile.v0", "empty_layer": true}),
        json!({"created": t, "created_by": format!("RUN |2 NPM_TOKEN={NPM} PYPI_TOKEN={PYPI} /bin/sh -c npm ci"), "comment": "buildkit.dockerfile.v0", "empty_layer": true}),
        json!({"created": t, "created_by": format!("ENV AWS_ACCESS_KEY_ID={AWS_ID} AWS_SECRET_ACCESS_KEY={AWS_SECRET}"), "empty_layer": true}),
        json!({"created": t, "created_by": format!("RUN /bin/sh -c curl -fsSL https://deploy:{URL_PW}@artifacts.example.com/app.tgz | tar xz")}),
        json!({"created": t, "created_by": format!("RUN /bin/sh -c git clone https://oauth2:{GLPAT}@gitlab.example.com/a/b.git # docker build --build-arg GITHUB_TOKEN={GH_PAT}"), "empty_layer": true}),
    ];
    let env = json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", format!("GITHUB_TOKEN={GH_PAT_ENV}"), format!("DB_PASSWORD={DB_PW}"), format!("GPG_KEY={GPG_KEY}"), "POSTGRES_PASSWORD_FILE=/run/secrets/pw"]);
    oci_layout_with_history(&dir.join("in"), &[base, secret_layer()], json!({"Env": env, "Cmd": ["/bin/sh", "-c", "echo ok"]}), history)
}

/// The findings' places, as `history[N]`, `Env KEY` or the path.
fn places(findings: &Value) -> BTreeSet<String> {
    findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| match f["place"].as_str().unwrap() {
            "history" => format!("history[{}]", f["index"]),
            "env" => format!("Env {}", f["key"].as_str().unwrap()),
            _ => f["path"].as_str().unwrap().to_string(),
        })
        .collect()
}

fn expected_places() -> BTreeSet<String> {
    [
        "history[2]", "history[3]", "history[4]", "history[5]", "Env GITHUB_TOKEN", "Env DB_PASSWORD", "/root/.npmrc", "/root/.pypirc", "/root/.git-credentials", "/root/.netrc",
        "/root/.docker/config.json", "/root/.aws/credentials", "/root/.kube/config", "/root/.ssh/id_ed25519", "/etc/ssl/private/server.key", "/app/.env", "/app/.git", "/app/keepme/.npmrc",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    memchr::memmem::find(hay, needle.as_bytes()).is_some()
}

/// The planted secrets found in the output's config blob, its layer tar and its unpacked
/// rootfs: three independent views of what a puller gets.
fn secrets_in_output(out: &Path, work: &Path) -> BTreeSet<String> {
    let blob = |d: &str| std::fs::read(out.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
    let idx: Value = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let man: Value = serde_json::from_slice(&blob(idx["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let config = blob(man["config"]["digest"].as_str().unwrap());
    let tar = first_layer(out);
    let root = umoci_unpack(out, &work.join("bundle"));
    // busybox's applets are hardlinks of one binary: read each inode once.
    let mut seen = BTreeSet::new();
    let files: Vec<Vec<u8>> = walkdir::WalkDir::new(&root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && seen.insert(std::os::unix::fs::MetadataExt::ino(&e.metadata().unwrap())))
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    let mut found = BTreeSet::new();
    for (what, s) in planted().iter().map(|(w, s)| (w.to_string(), s.clone())).chain([("kept .npmrc".to_string(), NPM_KEPT.to_string())]) {
        for (view, hay) in [("config", &config), ("layer tar", &tar)].into_iter().chain(files.iter().map(|f| ("rootfs", f))) {
            if contains(hay, &s) {
                found.insert(format!("{what} in {view}"));
            }
        }
    }
    found
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn inspect_reports_every_secret_masked() {
    let t = tempfile::tempdir().unwrap();
    let img = secret_image(t.path());
    let o = run_ok(imgslim().args(["inspect", "--json"]).arg(&img));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(places(&v["secrets"]), expected_places(), "{:#}", v["secrets"]);
    let kinds: BTreeSet<&str> = v["secrets"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    for k in ["github-pat", "npm-access-token", "aws-access-token", "gitlab-pat", "pypi-upload-token", "credentials-in-url", "secret-assignment DB_PASSWORD", "private key (OpenSSH)", "private key (PEM, RSA)"] {
        assert!(kinds.contains(k), "kind {k} missing from {kinds:?}");
    }
    let text = run_ok(imgslim().arg("inspect").arg(&img));
    let all = format!("{}{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&text.stdout), stderr(&text));
    let n = v["secrets"].as_array().unwrap().len();
    assert!(all.contains(&format!("Secrets:      {n} found")), "{}", String::from_utf8_lossy(&text.stdout));
    for (what, s) in planted() {
        // Masks show at most 4 characters: no planted value (all longer than 10) appears.
        assert!(!all.contains(&s), "{what} printed in full");
    }
}

#[test]
fn scrub_secrets_leaves_none_and_strict_refuses() {
    if !have_tool("umoci") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let img = secret_image(t.path());
    let clean = ["--level", "clean", "--format", "oci"];

    // Without the flag: warnings, and the secrets are still in the output (the oracle can fail).
    let out = t.path().join("warned");
    let o = run_ok(imgslim().arg("slim").arg(&img).arg("-o").arg(&out).args(clean));
    assert!(stderr(&o).contains("warning: secret: history[2] created_by: npm-access-token npm_**** (40 chars) [left]"), "{}", stderr(&o));
    let leaked = secrets_in_output(&out, &t.path().join("w1"));
    for what in ["history NPM in config", "Env DB_PASSWORD in config", ".netrc in layer tar", "PEM key in rootfs"] {
        assert!(leaked.contains(what), "{what} not in {leaked:?}");
    }

    // --strict: exit 3, nothing written.
    let strict = t.path().join("strict");
    let o = run(imgslim().arg("slim").arg(&img).arg("-o").arg(&strict).args(clean).arg("--strict"));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("secret(s) would be left"), "{}", stderr(&o));
    assert!(!strict.exists());

    // --scrub-secrets (with --strict: nothing is left, so it passes); --keep keeps one file.
    let out = t.path().join("scrubbed");
    let report = t.path().join("r.json");
    let o = run_ok(imgslim().arg("slim").arg(&img).arg("-o").arg(&out).args(clean).args(["--scrub-secrets", "--keep", "/app/keepme/.npmrc", "--report"]).arg(&report));
    let e = stderr(&o);
    assert!(e.contains("Env DB_PASSWORD removed") && e.contains("Env GITHUB_TOKEN removed"), "{e}");
    assert_eq!(secrets_in_output(&out, &t.path().join("w2")), ["kept .npmrc in layer tar", "kept .npmrc in rootfs"].into_iter().map(String::from).collect::<BTreeSet<_>>());
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let left: Vec<&Value> = r["secrets"].as_array().unwrap().iter().filter(|f| f["status"] != "scrubbed").collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["status"], "left (kept by --keep)");

    // The config: the history keeps its entries and empty_layer marks, the lines are redacted,
    // the other Env entries stay; imgslim itself finds only the kept file.
    let v: Value = serde_json::from_slice(&run_ok(imgslim().args(["inspect", "--json"]).arg(&out)).stdout).unwrap();
    assert_eq!(places(&v["secrets"]), ["/app/keepme/.npmrc".to_string()].into());
    let cfg_env: Vec<String> = v["config"]["env"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect();
    assert!(cfg_env.contains(&format!("GPG_KEY={GPG_KEY}")) && cfg_env.contains(&"POSTGRES_PASSWORD_FILE=/run/secrets/pw".to_string()), "{cfg_env:?}");
    let blob = |d: &str| std::fs::read(out.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
    let idx: Value = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let man: Value = serde_json::from_slice(&blob(idx["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let cfg: Value = serde_json::from_slice(&blob(man["config"]["digest"].as_str().unwrap())).unwrap();
    let hist = cfg["history"].as_array().unwrap();
    assert_eq!(hist.len(), 7);
    assert!(hist[..6].iter().all(|h| h["empty_layer"] == true));
    assert_eq!(hist[2]["created_by"], "RUN |2 NPM_TOKEN=[REDACTED] PYPI_TOKEN=[REDACTED] /bin/sh -c npm ci");
    assert_eq!(hist[1]["created_by"], "ARG NPM_TOKEN");
}

#[test]
fn no_secrets_in_the_acceptance_images() {
    for name in ["python-web", "node-app", "postgres", "apache-php", "nginx-static", "jre-app"] {
        let Some(img) = acceptance_image(name) else { return };
        let o = run_ok(imgslim().args(["inspect", "--json"]).arg(&img));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["secrets"], json!([]), "{name}");
    }
}

#[test]
fn history_and_env_survive_a_scrub_of_a_clean_image_unchanged() {
    // No finding, no change: the config's history and Env are byte-for-byte those of a slim
    // without the flag.
    if !have_tool("umoci") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let img = shared_images().join("busybox-1.38.0-musl.oci");
    let a = t.path().join("a");
    let b = t.path().join("b");
    run_ok(imgslim().arg("slim").arg(&img).arg("-o").arg(&a).args(["--format", "oci"]));
    let o = run_ok(imgslim().arg("slim").arg(&img).arg("-o").arg(&b).args(["--format", "oci", "--scrub-secrets"]));
    assert!(!stderr(&o).contains("secret"), "{}", stderr(&o));
    assert_eq!(std::fs::read(a.join("index.json")).unwrap(), std::fs::read(b.join("index.json")).unwrap());
}
