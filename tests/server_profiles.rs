//! Server profiles (postgresql, redis, apache/php) on the real Debian packages (`apt-get
//! download`, then `dpkg-deb -x` into a tree), evaluated by the profile stage. The acceptance images
//! (tests/acceptance/build/{postgres,redis,apache-php}.sh) run the slimmed servers; these tests pin what each
//! profile keeps, leaves out and names. apt-get/dpkg-deb missing: skip, or fail under CI=true.
mod common;
use std::path::{Path, PathBuf};
use std::process::Command;

use imgslim::elf::HostDir;
use imgslim::profile::{drop_rules, evaluate, ImageView, Needs, ProfileSet};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The packages unpacked into one tree, cached per package set (the .debs are ~20 MB).
fn unpacked(pkgs: &[&str]) -> Option<PathBuf> {
    if !common::have_tool("apt-get") || !common::have_tool("dpkg-deb") {
        return None;
    }
    let base = std::env::var_os("IMGSLIM_TEST_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/cache/imgslim-test"));
    let dir = base.join(format!("debs-{}", pkgs.join("+")));
    let root = dir.join("root");
    if dir.join(".complete").exists() {
        return Some(root);
    }
    let dl = dir.join("dl");
    std::fs::create_dir_all(&dl).unwrap();
    let out = Command::new("apt-get").arg("download").args(pkgs).current_dir(&dl).output().unwrap();
    if !out.status.success() {
        assert!(!ci(), "apt-get download {pkgs:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        eprintln!("SKIP: apt-get download {pkgs:?} failed");
        return None;
    }
    for deb in std::fs::read_dir(&dl).unwrap() {
        let deb = deb.unwrap().path();
        assert!(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root).status().unwrap().success(), "dpkg-deb -x {}", deb.display());
    }
    std::fs::write(dir.join(".complete"), b"").unwrap();
    Some(root)
}

fn eval(root: &Path, env: &[(&str, &str)], roots: &[&str]) -> (ProfileSet, Needs) {
    let fs = HostDir::new(root);
    let set = ProfileSet::builtin().unwrap();
    let env: Vec<(String, String)> = env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let roots: Vec<String> = roots.iter().map(|s| s.to_string()).collect();
    let view = ImageView { fs: &fs, env: &env, roots: &roots, workdir: Some("/"), user: None };
    let n = evaluate(&set, &[], &view).unwrap();
    (set, n)
}

fn is_kept(n: &Needs, p: &str) -> bool {
    n.keep.iter().any(|k| k.path == p || p.starts_with(&format!("{}/", k.path)))
}
fn elf_root(n: &Needs, p: &str) -> bool {
    n.elf_roots.iter().any(|k| k.path == p)
}
fn applied(n: &Needs, name: &str) -> bool {
    n.applied.iter().any(|a| a.name == name)
}

/// The server's major version directory, e.g. /usr/lib/postgresql/15.
fn only_subdir(dir: &Path) -> String {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    assert_eq!(v.len(), 1, "{}: {v:?}", dir.display());
    v.remove(0)
}

/// The one entry of `dir` whose name starts with `prefix` (PHP's API-dated extension dir).
fn only_subdir_matching(dir: &Path, prefix: &str) -> String {
    let v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with(prefix)).collect();
    assert_eq!(v.len(), 1, "{}: {v:?}", dir.display());
    v[0].clone()
}

#[test]
fn postgresql_debian_server() {
    let Some(r) = unpacked(&["postgresql-15", "postgresql-client-15", "tzdata", "libc-bin"]) else { return };
    let major = only_subdir(&r.join("usr/lib/postgresql"));
    let (lib, bin, share) = (format!("/usr/lib/postgresql/{major}/lib"), format!("/usr/lib/postgresql/{major}/bin"), format!("/usr/share/postgresql/{major}"));
    // A data dir as the official image has it, with a config that preloads one module the
    // package has and one it does not.
    let data = r.join("var/lib/postgresql/data");
    std::fs::create_dir_all(data.join("conf.d")).unwrap();
    std::fs::write(data.join("postgresql.conf"), "include_dir = 'conf.d'\n#shared_preload_libraries = 'commented'\n").unwrap();
    std::fs::write(data.join("conf.d/preload.conf"), "shared_preload_libraries = '$libdir/pg_stat_statements, timescaledb'\n").unwrap();

    let (set, n) = eval(&r, &[("PGDATA", "/var/lib/postgresql/data")], &[]);
    assert!(applied(&n, "postgresql"), "{:?}", n.applied);
    // The server, setup programs and clients; modules the server dlopen()s.
    for p in ["postgres", "initdb", "pg_ctl", "psql", "pg_dump", "pg_isready"] {
        assert!(elf_root(&n, &format!("{bin}/{p}")), "{p} is not an ELF root");
    }
    for m in ["plpgsql.so", "hstore.so", "pg_trgm.so", "dict_snowball.so", "utf8_and_iso8859_1.so", "pg_stat_statements.so"] {
        assert!(elf_root(&n, &format!("{lib}/{m}")), "{m} is not an ELF root");
    }
    // What initdb and the server read at run time.
    for p in ["postgres.bki", "postgresql.conf.sample", "timezonesets/Default", "tsearch_data/english.stop", "extension/hstore.control", "extension/pg_trgm--1.3.sql"] {
        assert!(is_kept(&n, &format!("{share}/{p}")), "{share}/{p} not kept");
    }
    for p in ["/usr/share/zoneinfo/Europe/Paris", "/usr/bin/locale", "/var/lib/postgresql/data/conf.d/preload.conf"] {
        assert!(is_kept(&n, p), "{p} not kept");
    }
    // The JIT provider (and with it libLLVM) is left out; PGXS and the man pages go by name.
    for p in [format!("{lib}/llvmjit.so"), format!("{lib}/bitcode/postgres/access/brin/brin.bc"), format!("{share}/man/man1/psql.1.gz")] {
        assert!(!is_kept(&n, &p) && !elf_root(&n, &p), "{p} kept");
    }
    assert!(n.keep_dirs.iter().any(|k| k.path == "/var/log/postgresql" || k.path == "/var/run/postgresql") || !r.join("var/log/postgresql").exists());
    let rules = drop_rules(&set, &n.applied);
    let rule = |p: &str| rules.iter().find(|x| x.matches(p)).map(|x| x.name.clone());
    assert_eq!(rule(&format!("{share}/man/man1/psql.1.gz")).as_deref(), Some("postgresql-man"));
    assert_eq!(rule(&format!("{lib}/pgxs/src/test/regress/pg_regress")).as_deref(), Some("postgresql-regress"));
    assert_eq!(rule(&format!("{lib}/pgxs/src/Makefile.global")).as_deref(), Some("postgresql-pgxs"));
    assert!(n.warnings.iter().any(|w| w.contains("timescaledb") && w.contains("preload.conf")), "{:#?}", n.warnings);
    assert!(!n.warnings.iter().any(|w| w.contains("commented")), "{:#?}", n.warnings);
}

#[test]
fn redis_debian_server() {
    let Some(r) = unpacked(&["redis-server", "redis-tools"]) else { return };
    // A derived image's config: Debian's included, a module that is there and one that is not.
    let m = r.join("usr/lib/redis/modules");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::copy("/bin/true", m.join("probe.so")).unwrap();
    std::fs::create_dir_all(r.join("usr/local/etc/redis")).unwrap();
    std::fs::create_dir_all(r.join("srv/redis-data")).unwrap();
    std::fs::write(
        r.join("usr/local/etc/redis/redis.conf"),
        "include /etc/redis/redis.conf\nloadmodule /usr/lib/redis/modules/probe.so\nloadmodule /opt/missing/search.so\ndir /srv/redis-data\n# loadmodule /commented.so\n",
    )
    .unwrap();
    let (_, n) = eval(&r, &[], &[]);
    assert!(applied(&n, "redis"), "{:?}", n.applied);
    // redis-server is a symlink to redis-check-rdb: the file behind it is the root.
    for p in ["/usr/bin/redis-check-rdb", "/usr/bin/redis-cli", "/usr/lib/redis/modules/probe.so"] {
        assert!(elf_root(&n, p), "{p} is not an ELF root: {:#?}", n.elf_roots);
    }
    for p in ["/usr/bin/redis-server", "/etc/redis/redis.conf", "/usr/local/etc/redis/redis.conf"] {
        assert!(is_kept(&n, p), "{p} not kept");
    }
    assert!(n.keep_dirs.iter().any(|k| k.path == "/srv/redis-data"), "{:#?}", n.keep_dirs);
    assert!(n.warnings.iter().any(|w| w.contains("/opt/missing/search.so")), "{:#?}", n.warnings);
    assert!(!n.warnings.iter().any(|w| w.contains("commented")), "{:#?}", n.warnings);
}

#[test]
fn apache_mod_php_debian() {
    let Some(r) = unpacked(&["apache2", "libapache2-mod-php8.2", "php8.2-common", "php8.2-sqlite3", "php8.2-mbstring"]) else { return };
    // What a2enmod/phpenmod do in the packages' postinst (not in the .debs): enable mod_php and
    // two extensions, plus an extension line naming one the image does not have.
    let link = |target: &str, at: &str| {
        let at = r.join(at.trim_start_matches('/'));
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&at);
        std::os::unix::fs::symlink(target, at).unwrap();
    };
    link("../mods-available/php8.2.load", "/etc/apache2/mods-enabled/php8.2.load");
    link("../mods-available/mpm_prefork.load", "/etc/apache2/mods-enabled/mpm_prefork.load");
    let conf_d = r.join("etc/php/8.2/apache2/conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::copy(r.join("usr/lib/php/8.2/php.ini-production"), r.join("etc/php/8.2/apache2/php.ini")).unwrap();
    link("/etc/php/8.2/mods-available/pdo_sqlite.ini", "/etc/php/8.2/apache2/conf.d/20-pdo_sqlite.ini");
    link("/etc/php/8.2/mods-available/mbstring.ini", "/etc/php/8.2/apache2/conf.d/20-mbstring.ini");
    std::fs::write(conf_d.join("30-missing.ini"), "; comment\nextension=imagick\n").unwrap();
    // mods-available/*.ini ship in /usr/share/php8.2-*/ and are copied by the postinst.
    for (pkg, m) in [("sqlite3", "pdo_sqlite"), ("mbstring", "mbstring")] {
        let src = r.join(format!("usr/share/php8.2-{pkg}/{pkg}/{m}.ini"));
        let dst = r.join(format!("etc/php/8.2/mods-available/{m}.ini"));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    }
    let (set, n) = eval(&r, &[], &["/usr/sbin/apache2"]);
    assert!(applied(&n, "apache") && applied(&n, "php"), "{:?}", n.applied);
    // Named by the enabled LoadModule line (the module dir's glob would keep it too).
    assert!(elf_root(&n, "/usr/lib/apache2/modules/libphp8.2.so"), "{:#?}", n.elf_roots);
    assert!(n.applied.iter().any(|a| a.name == "apache" && !a.why.contains(" 0 LoadModule")), "{:?}", n.applied);
    for p in ["/etc/apache2/apache2.conf", "/etc/apache2/mods-available/php8.2.conf", "/etc/php/8.2/apache2/conf.d/20-mbstring.ini", "/etc/apache2/envvars"] {
        assert!(is_kept(&n, p), "{p} not kept");
    }
    // pdo_sqlite, mbstring (through conf.d symlinks) and the missing imagick; the extension
    // dir's .so are ELF roots through the profile's glob already.
    assert!(n.applied.iter().any(|a| a.name == "php" && a.why.contains(", 3 extension line(s)")), "{:?}", n.applied);
    assert!(elf_root(&n, &format!("/usr/lib/php/{}/pdo_sqlite.so", only_subdir_matching(&r.join("usr/lib/php"), "20"))));
    assert!(n.warnings.iter().any(|w| w.contains("imagick") && w.contains("30-missing.ini")), "{:#?}", n.warnings);
    let rules = drop_rules(&set, &n.applied);
    assert!(rules.iter().any(|x| x.name == "apache-build" && x.matches("/usr/share/apache2/build/config_vars.mk")));
}

#[test]
fn mariadb_debian_server() {
    let Some(r) = unpacked(&["mariadb-server", "mariadb-server-core", "mariadb-client", "mariadb-client-core", "mariadb-common", "mysql-common", "gosu"]) else { return };
    // What the postinst does (update-alternatives my.cnf), and a derived image's drop-in that
    // loads one plugin the package has and one it does not, and moves the data dir.
    let _ = std::fs::remove_file(r.join("etc/mysql/my.cnf"));
    std::os::unix::fs::symlink("mariadb.cnf", r.join("etc/mysql/my.cnf")).unwrap();
    std::fs::create_dir_all(r.join("srv/mysql-data")).unwrap();
    std::fs::create_dir_all(r.join("var/log/mysql")).unwrap();
    std::fs::write(
        r.join("etc/mysql/mariadb.conf.d/90-app.cnf"),
        "[mariadbd]\nplugin-load-add = ha_archive.so\nloose-plugin_load_add = rocks=ha_rocksdb\ndatadir = /srv/mysql-data\nlog_error = /var/log/mysql/error.log\n# plugin-load-add = commented.so\n",
    )
    .unwrap();
    let (set, n) = eval(&r, &[], &[]);
    assert!(applied(&n, "mariadb"), "{:?}", n.applied);
    // The server, what the official entrypoint runs, and the plugin dir (storage engines).
    for p in ["/usr/sbin/mariadbd", "/usr/bin/mariadb", "/usr/bin/mariadb-admin", "/usr/bin/my_print_defaults", "/usr/bin/mariadb-tzinfo-to-sql", "/usr/sbin/gosu"] {
        assert!(elf_root(&n, p), "{p} is not an ELF root");
    }
    for m in ["ha_archive.so", "ha_blackhole.so", "auth_ed25519.so", "metadata_lock_info.so"] {
        assert!(elf_root(&n, &format!("/usr/lib/mysql/plugin/{m}")), "{m} is not an ELF root");
    }
    // mariadb-install-db is a shell script: kept, and its own commands are roots.
    assert!(is_kept(&n, "/usr/bin/mariadb-install-db"), "mariadb-install-db not kept");
    // What the server and mariadb-install-db read; the config tree and what it names.
    for p in ["/usr/share/mysql/english/errmsg.sys", "/usr/share/mysql/charsets/Index.xml", "/usr/share/mysql/mysql_system_tables.sql", "/etc/mysql/mariadb.conf.d/50-server.cnf", "/etc/mysql/mariadb.conf.d/90-app.cnf", "/etc/mysql/my.cnf", "/srv/mysql-data"] {
        assert!(is_kept(&n, p), "{p} not kept");
    }
    assert!(n.keep_dirs.iter().any(|k| k.path == "/var/log/mysql"), "{:#?}", n.keep_dirs);
    assert!(n.applied.iter().any(|a| a.name == "mariadb" && a.why.contains("1 plugin(s) loaded by config")), "{:?}", n.applied);
    assert!(n.warnings.iter().any(|w| w.contains("ha_rocksdb.so") && w.contains("90-app.cnf")), "{:#?}", n.warnings);
    assert!(!n.warnings.iter().any(|w| w.contains("commented")), "{:#?}", n.warnings);
    // errmsg-utf8.txt (comp_err's source) and the benchmark script go by name.
    for p in ["/usr/share/mysql/errmsg-utf8.txt", "/usr/share/mysql/mini-benchmark"] {
        assert!(!is_kept(&n, p), "{p} kept");
    }
    let rules = drop_rules(&set, &n.applied);
    let rule = |p: &str| rules.iter().find(|x| x.matches(p)).map(|x| x.name.clone());
    assert_eq!(rule("/usr/share/mysql/errmsg-utf8.txt").as_deref(), Some("mariadb-errmsg-source"));
    assert_eq!(rule("/usr/share/mysql/mini-benchmark").as_deref(), Some("mariadb-test"));
    assert_eq!(rule("/usr/share/mysql/mysql-test/mariadb-test-run.pl").as_deref(), Some("mariadb-test"));
    assert_eq!(rule("/usr/bin/mariadb_config").as_deref(), Some("mariadb-dev"));
    assert_eq!(rule("/usr/include/mariadb/mysql.h").as_deref(), Some("headers"));
}

/// Files (ELF copies of /bin/true where the name ends in .so) under `root`.
fn plant(root: &Path, files: &[&str]) {
    for f in files {
        let p = root.join(f.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        if f.ends_with(".so") {
            std::fs::copy("/bin/true", &p).unwrap();
        } else {
            std::fs::write(&p, b"x\n").unwrap();
        }
    }
}

#[test]
fn ruby_debian_gems_and_gem_home() {
    let Some(r) = unpacked(&["ruby3.1", "libruby3.1", "ruby-rubygems", "ruby-sqlite3", "ruby-rack"]) else { return };
    // A GEM_HOME outside the known trees, as `gem install` leaves it: a native gem with its
    // build leftovers, tests and the cached .gem.
    plant(&r, &["/opt/gems/gems/fast-1.0/lib/fast/fast.so", "/opt/gems/gems/fast-1.0/lib/fast.rb", "/opt/gems/gems/fast-1.0/ext/fast/fast.o", "/opt/gems/gems/fast-1.0/ext/fast/Makefile", "/opt/gems/gems/fast-1.0/test/test_fast.rb", "/opt/gems/cache/fast-1.0.gem", "/opt/gems/specifications/fast-1.0.gemspec"]);
    let (set, n) = eval(&r, &[("GEM_HOME", "/opt/gems")], &["/usr/bin/rackup"]);
    assert!(applied(&n, "ruby"), "{:?}", n.applied);
    // Native extensions of the stdlib, of a Debian gem and of the GEM_HOME gem are ELF roots.
    for p in ["/usr/lib/x86_64-linux-gnu/ruby/3.1.0/bigdecimal.so", "/usr/lib/x86_64-linux-gnu/ruby/vendor_ruby/3.1.0/sqlite3/sqlite3_native.so", "/opt/gems/gems/fast-1.0/lib/fast/fast.so"] {
        assert!(elf_root(&n, p), "{p} is not an ELF root");
    }
    for p in ["/usr/lib/ruby/vendor_ruby/rack.rb", "/usr/lib/ruby/vendor_ruby/sqlite3.rb", "/usr/lib/ruby/3.1.0/json.rb", "/usr/share/rubygems-integration/3.1.0/specifications/sqlite3-1.4.2.gemspec", "/opt/gems/gems/fast-1.0/lib/fast.rb", "/opt/gems/specifications/fast-1.0.gemspec"] {
        assert!(is_kept(&n, p), "{p} not kept");
    }
    for p in ["/opt/gems/gems/fast-1.0/ext/fast/fast.o", "/opt/gems/gems/fast-1.0/ext/fast/Makefile", "/opt/gems/gems/fast-1.0/test/test_fast.rb", "/opt/gems/cache/fast-1.0.gem"] {
        assert!(!is_kept(&n, p), "{p} kept");
    }
    let rules = drop_rules(&set, &n.applied);
    let rule = |p: &str| rules.iter().find(|x| x.matches(p)).map(|x| x.name.clone());
    assert_eq!(rule("/opt/gems/gems/fast-1.0/test/test_fast.rb").as_deref(), Some("ruby-gem-tests"));
    assert_eq!(rule("/opt/gems/cache/fast-1.0.gem").as_deref(), Some("ruby-gem-cache"));
    assert_eq!(rule("/opt/gems/gems/fast-1.0/ext/fast/fast.o").as_deref(), Some("ruby-ext-build"));
}

#[test]
fn perl_debian_xs_modules_and_perl5lib() {
    let Some(r) = unpacked(&["perl-base", "perl", "perl-modules-5.36", "libperl5.36", "libjson-xs-perl"]) else { return };
    plant(&r, &["/srv/lib/perl/auto/Fast/Fast.so", "/srv/lib/perl/Fast.pm", "/srv/lib/perl/Fast.pod"]);
    let (set, n) = eval(&r, &[("PERL5LIB", "/srv/lib/perl:/nowhere")], &["/usr/bin/perl"]);
    assert!(applied(&n, "perl"), "{:?}", n.applied);
    // XS modules: core (POSIX, Encode), vendor (JSON::XS) and PERL5LIB's.
    let arch = "/usr/lib/x86_64-linux-gnu/perl/5.36.0";
    for p in [format!("{arch}/auto/POSIX/POSIX.so"), format!("{arch}/auto/Encode/Encode.so"), "/usr/lib/x86_64-linux-gnu/perl5/5.36/auto/JSON/XS/XS.so".into(), "/srv/lib/perl/auto/Fast/Fast.so".into()] {
        assert!(elf_root(&n, &p), "{p} is not an ELF root");
    }
    for p in [format!("{arch}/POSIX.pm"), "/usr/share/perl/5.36.0/Time/Local.pm".into(), "/usr/lib/x86_64-linux-gnu/perl5/5.36/JSON/XS.pm".into(), "/srv/lib/perl/Fast.pm".into()] {
        assert!(is_kept(&n, &p), "{p} not kept");
    }
    // Headers, build tools, the CPAN client and .pod go by name.
    for p in [format!("{arch}/CORE/perl.h"), "/usr/share/perl/5.36.0/ExtUtils/MakeMaker.pm".into(), "/usr/share/perl/5.36.0/CPAN.pm".into(), "/srv/lib/perl/Fast.pod".into()] {
        assert!(!is_kept(&n, &p), "{p} kept");
    }
    let rules = drop_rules(&set, &n.applied);
    let rule = |p: &str| rules.iter().find(|x| x.matches(p)).map(|x| x.name.clone());
    assert_eq!(rule(&format!("{arch}/CORE/perl.h")).as_deref(), Some("perl-xs-headers"));
    assert_eq!(rule("/usr/share/perl/5.36.0/ExtUtils/MakeMaker.pm").as_deref(), Some("perl-build-tools"));
    assert_eq!(rule("/usr/share/perl/5.36.0/CPAN.pm").as_deref(), Some("perl-cpan"));
    assert_eq!(rule("/usr/share/perl/5.36.0/pod/perlfunc.pod").as_deref(), Some("perl-pod"));
}

#[test]
fn tomcat_debian() {
    let Some(r) = unpacked(&["tomcat10", "tomcat10-common", "libtomcat10-java", "libeclipse-jdt-core-java"]) else { return };
    // What the postinst makes (CATALINA_BASE's links), a JVM where Debian puts it, and the
    // official image's extras under the Debian tree's name.
    std::fs::create_dir_all(r.join("var/lib/tomcat10/webapps/ROOT")).unwrap();
    std::fs::write(r.join("var/lib/tomcat10/webapps/ROOT/index.jsp"), "<%= 1 %>\n").unwrap();
    let conf = r.join("var/lib/tomcat10/conf");
    let _ = std::fs::remove_file(&conf);
    std::os::unix::fs::symlink("/etc/tomcat10", conf).unwrap();
    plant(&r, &["/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "/usr/share/tomcat10/bin/catalina.bat", "/var/lib/tomcat10/webapps/examples/index.html"]);
    std::fs::copy("/bin/true", r.join("usr/lib/jvm/java-17-openjdk-amd64/bin/java")).unwrap();
    let (set, n) = eval(&r, &[("CATALINA_HOME", "/usr/share/tomcat10"), ("CATALINA_BASE", "/var/lib/tomcat10")], &["/usr/share/tomcat10/bin/catalina.sh"]);
    assert!(applied(&n, "tomcat"), "{:?}", n.applied);
    // catalina.sh runs java through `eval exec "$_RUNJAVA"`: the profile names the launcher.
    assert!(elf_root(&n, "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"), "{:#?}", n.elf_roots);
    // The lib dir's jars are symlinks into /usr/share/java: their targets are kept.
    for p in ["/usr/share/tomcat10/bin/bootstrap.jar", "/usr/share/tomcat10/bin/setclasspath.sh", "/usr/share/tomcat10/lib/jasper.jar", "/usr/share/java/tomcat10-jasper.jar", "/usr/share/java/tomcat10-catalina.jar", "/usr/share/java/eclipse-jdt-core.jar", "/etc/tomcat10/server.xml", "/var/lib/tomcat10/webapps/ROOT/index.jsp"] {
        assert!(is_kept(&n, p), "{p} not kept");
    }
    for p in ["/usr/share/tomcat10/bin/catalina.bat", "/var/lib/tomcat10/webapps/examples/index.html"] {
        assert!(!is_kept(&n, p), "{p} kept");
    }
    let rules = drop_rules(&set, &n.applied);
    let rule = |p: &str| rules.iter().find(|x| x.matches(p)).map(|x| x.name.clone());
    assert_eq!(rule("/var/lib/tomcat10/webapps/examples/index.html").as_deref(), Some("tomcat-examples"));
    assert_eq!(rule("/usr/local/tomcat/webapps.dist/docs/index.html").as_deref(), Some("tomcat-examples"));
    assert_eq!(rule("/usr/share/tomcat10/bin/catalina.bat").as_deref(), Some("tomcat-windows-scripts"));
    assert_eq!(rule("/usr/local/tomcat/bin/tomcat-native.tar.gz").as_deref(), Some("tomcat-native-sources"));
}
