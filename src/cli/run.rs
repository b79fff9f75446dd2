//! `imgslim run IMAGE [-- ARGS…]`: the image's app in the sandbox, like `docker run --rm`,
//! without a daemon; exits with the app's code.
use super::common::{self, InputArgs};
use crate::error::{Error, Result};
use crate::sandbox::process::Overrides;
use crate::sandbox::session::{self, RunOptions};
use crate::sandbox::{Network, NoHooks, ProbeArgs, Sandbox};

/// How the app runs: shared by `run`, `verify` and `slim --verify`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ContainerArgs {
    /// Entrypoint: a JSON array ('["/bin/sh","-c"]') or one executable.
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Set an environment variable (repeatable).
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// USER[:GROUP], names or numbers, resolved in the image.
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: Option<String>,
    /// isolated: its own network namespace with loopback only; host: the host's.
    #[arg(long, value_enum, default_value = "isolated")]
    pub network: Network,
}

impl ContainerArgs {
    pub fn options(&self, args: &[String], capture: bool) -> Result<RunOptions> {
        let entrypoint = match &self.entrypoint {
            Some(s) if s.trim_start().starts_with('[') => Some(
                serde_json::from_str::<Vec<String>>(s).map_err(|e| Error::Usage(format!("--entrypoint: not a JSON array of strings: {e}")))?,
            ),
            Some(s) => Some(vec![s.clone()]),
            None => None,
        };
        let overrides = Overrides { entrypoint, args: args.to_vec(), env: self.env.clone(), user: self.user.clone() };
        Ok(RunOptions { overrides, network: self.network, capture })
    }
}

/// How the app runs and what drives it: `run` and `verify` share these.
#[derive(clap::Args, Debug)]
pub struct SandboxArgs {
    #[command(flatten)]
    pub container: ContainerArgs,
    #[command(flatten)]
    pub probes: ProbeArgs,
    /// Replace the image's Cmd.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// Returns the app's exit code (128+signal when it was killed).
pub fn run(a: &RunArgs) -> Result<i32> {
    session::catch_interrupts();
    let work = common::work_area()?;
    let _guardian = session::guard_work_area(work.path())?;
    let opts = a.sandbox.container.options(&a.sandbox.args, false)?;
    a.sandbox.probes.probes()?;
    let loaded = common::load_input(&a.input, work.path())?;
    session::check_interrupted()?;
    let (_rootfs, spec) = session::prepare(&loaded.tree, &loaded.store, &loaded.image.config, work.path(), "run", &opts)?;
    session::check_interrupted()?;
    let running = Sandbox::start(&spec, &mut NoHooks)?;
    session::kill_on_interrupt(running.init_pid());
    let ctl = running.control();
    let probed = !a.sandbox.probes.http.is_empty() || !a.sandbox.probes.exec.is_empty() || a.sandbox.probes.run_for.is_some();
    let outcome = if probed {
        session::exercise(&ctl, &a.sandbox.probes, &mut |_| {}).map(|(answers, app)| {
            for x in &answers {
                eprintln!("probe {}: {}", x.label, x.summary());
            }
            app
        })
    } else {
        ctl.wait_app(None)
    };
    session::check_interrupted()?;
    let app = outcome?;
    running.stop();
    let code = running.wait()?;
    session::kill_on_interrupt(0);
    session::check_interrupted()?;
    Ok(match app {
        Some(app) => app.code,
        None => {
            eprintln!("imgslim: the app was still running after the probes: stopped");
            let _ = code;
            0
        }
    })
}
