//! Credentials on the command line: `--cert/--key/--ca`, `--certs DIR`, `--insecure`
//! (for `seedbank node` and `seedbank shell --connect`), and `seedbank certs`, which
//! writes a development CA and certificates in the layout `--certs DIR` reads:
//!
//! ```text
//! DIR/ca.pem  DIR/ca.key                      the CA (keep ca.key offline in production)
//! DIR/node-<id>.pem  DIR/node-<id>.key        one per node
//! DIR/client-<name>.pem  DIR/client-<name>.key one per client (`shell` by default)
//! ```
//!
//! ## Invariants
//! - No credentials and no `--insecure` is a usage error: plaintext is never a silent
//!   default. `--insecure` prints a warning naming what it gives up.
//! - Private keys are written readable by their owner only (Unix).
//!
//! ## Non-goals
//! - Loading keys from an agent or an HSM; passphrase-protected keys.

use std::path::{Path, PathBuf};

/// The credential flags shared by `node` and `shell --connect`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CredentialArgs {
    /// This process's certificate (PEM; the chain may follow).
    #[arg(long, requires_all = ["key", "ca"], conflicts_with_all = ["certs", "insecure"])]
    pub cert: Option<PathBuf>,
    /// The private key of `--cert` (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// The CA certificate(s) peers must be signed by (PEM).
    #[arg(long, requires = "cert")]
    pub ca: Option<PathBuf>,
    /// A directory written by `seedbank certs`: takes ca.pem and this process's
    /// `node-<id>` (node) or `client-<name>` (shell) certificate and key from it.
    #[arg(long, conflicts_with = "insecure")]
    pub certs: Option<PathBuf>,
    /// Plaintext, unauthenticated connections: anyone who reaches the port can speak
    /// as any node. For experiments on a trusted machine only; prints a warning.
    #[arg(long)]
    pub insecure: bool,
}

/// The three files of one identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// What the flags ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Tls(CredentialFiles),
    Insecure,
}

impl CredentialArgs {
    /// The files to load for identity `name` (`node-3`, `client-shell`), or insecure.
    pub fn choose(&self, name: &str) -> Result<Choice, String> {
        match (&self.cert, &self.key, &self.ca, &self.certs, self.insecure) {
            (Some(cert), Some(key), Some(ca), None, false) => Ok(Choice::Tls(CredentialFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
            })),
            (None, None, None, Some(dir), false) => Ok(Choice::Tls(in_dir(dir, name))),
            (None, None, None, None, true) => Ok(Choice::Insecure),
            (None, None, None, None, false) => Err(
                "credentials needed: --certs DIR (made by `seedbank certs`), or --cert, --key \
                 and --ca; or --insecure for unauthenticated plaintext"
                    .into(),
            ),
            _ => Err("give either --certs DIR, or all of --cert/--key/--ca, or --insecure".into()),
        }
    }
}

/// Where `seedbank certs` puts identity `name`'s files in `dir`.
pub fn in_dir(dir: &Path, name: &str) -> CredentialFiles {
    CredentialFiles {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
        ca: dir.join("ca.pem"),
    }
}

/// The warning `--insecure` prints.
pub fn insecure_warning(what: &str) -> String {
    format!(
        "WARNING: {what} runs with --insecure: connections are neither authenticated nor \
         encrypted; anyone who can reach the port can speak as any node or client"
    )
}

/// Loads the chosen credentials (reads the files: call inside the runtime).
#[cfg(not(any(madsim, doctest)))]
pub async fn load(choice: &Choice) -> Result<sim_net::Auth, String> {
    let files = match choice {
        Choice::Insecure => return Ok(sim_net::Auth::Insecure),
        Choice::Tls(files) => files,
    };
    let read = |p: PathBuf| async move {
        sim_fs::read(&p)
            .await
            .map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let cert = read(files.cert.clone()).await?;
    let key = read(files.key.clone()).await?;
    let ca = read(files.ca.clone()).await?;
    sim_net::tls::TlsAuth::from_pem(&cert, &key, &ca)
        .map(sim_net::Auth::Tls)
        .map_err(|e| format!("{}: {e}", files.cert.display()))
}

/// Parses `--clients a,b` into client identities.
pub fn parse_clients(list: &str) -> Result<Vec<sim_net::Identity>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            sim_net::Identity::from_name(&format!("client-{c}"))
                .map_err(|_| format!("client name {c:?}: use lowercase letters, digits and '-'"))
        })
        .collect()
}

/// `seedbank certs --out DIR --nodes N --clients LIST`: a development CA and
/// certificates. Refuses to overwrite existing files.
#[cfg(not(any(madsim, doctest)))]
pub fn certs_main(out: &Path, nodes: u64, clients: &str) -> std::process::ExitCode {
    use std::process::ExitCode;
    let usage = |e: String| {
        eprintln!("seedbank certs: {e}");
        ExitCode::from(2)
    };
    if nodes == 0 || nodes >= engine::replicated::client::MIN_CLIENT_ID {
        return usage(format!("--nodes {nodes}: need at least 1"));
    }
    let clients = match parse_clients(clients) {
        Ok(c) => c,
        Err(e) => return usage(format!("--clients: {e}")),
    };
    let identities: Vec<sim_net::Identity> = (1..=nodes)
        .map(sim_net::Identity::Node)
        .chain(clients)
        .collect();
    let files = match sim_net::tls::generate_dev_certs(&identities) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("seedbank certs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match crate::shell::input::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        match write_files(out, &files).await {
            Ok(()) => {
                let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
                println!(
                    "wrote {} files to {}: {}",
                    files.len(),
                    out.display(),
                    names.join(" ")
                );
                println!(
                    "keep ca.key private (it can mint any node's identity); \
                     give each process only its own .key"
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("seedbank certs: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

#[cfg(not(any(madsim, doctest)))]
async fn write_files(out: &Path, files: &[sim_net::tls::DevCertFile]) -> Result<(), String> {
    sim_fs::create_dir_all(out)
        .await
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for f in files {
        let path = out.join(&f.name);
        if sim_fs::exists(&path).await.unwrap_or(false) {
            return Err(format!(
                "{} exists; refusing to overwrite credentials (use a new --out)",
                path.display()
            ));
        }
    }
    for f in files {
        let path = out.join(&f.name);
        sim_fs::write(&path, f.pem.as_bytes())
            .await
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        if f.secret {
            owner_only(&path)?;
        }
    }
    sim_fs::sync_dir(out)
        .await
        .map_err(|e| format!("cannot sync {}: {e}", out.display()))
}

/// Makes a key file readable by its owner only. The CLI's own output in the real
/// world (sim-fs has no permissions model), hence std directly.
#[cfg(all(unix, not(any(madsim, doctest))))]
fn owner_only(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))
}

#[cfg(all(not(unix), not(any(madsim, doctest))))]
fn owner_only(_path: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_choose_files_or_insecure_and_never_default_to_plaintext() {
        let none = CredentialArgs::default();
        assert!(
            none.choose("node-1").is_err(),
            "no flags must not mean plaintext"
        );
        let dir = CredentialArgs {
            certs: Some("/c".into()),
            ..CredentialArgs::default()
        };
        assert_eq!(
            dir.choose("node-2"),
            Ok(Choice::Tls(CredentialFiles {
                cert: "/c/node-2.pem".into(),
                key: "/c/node-2.key".into(),
                ca: "/c/ca.pem".into(),
            }))
        );
        let insecure = CredentialArgs {
            insecure: true,
            ..CredentialArgs::default()
        };
        assert_eq!(insecure.choose("node-1"), Ok(Choice::Insecure));
        let both = CredentialArgs {
            insecure: true,
            certs: Some("/c".into()),
            ..CredentialArgs::default()
        };
        assert!(both.choose("node-1").is_err());
        assert!(insecure_warning("seedbank node").contains("WARNING"));
    }

    #[test]
    fn client_lists_parse_and_bad_names_are_refused() {
        assert_eq!(
            parse_clients("shell, bench-1"),
            Ok(vec![
                sim_net::Identity::Client("shell".into()),
                sim_net::Identity::Client("bench-1".into())
            ])
        );
        assert!(parse_clients("Bad_Name").is_err());
    }
}
