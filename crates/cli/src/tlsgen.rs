//! `cairn tls new`: a private CA and one certificate per name, for a
//! deployment that has no PKI of its own (the compose file uses it). Keys
//! are written mode 0600 and never overwritten.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

#[derive(Args)]
pub(crate) struct TlsNewArgs {
    /// Folder for `ca.pem`, `ca.key` and `<name>.pem`, `<name>.key`
    /// (created if missing; existing files are never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// A DNS name to issue a certificate for (repeatable). Each
    /// certificate also names `localhost` and 127.0.0.1, for health checks.
    #[arg(long = "name", required = true)]
    names: Vec<String>,
}

/// Writes `text` to a new file (mode `mode`), refusing to replace one.
/// Durably, and never over an existing file (keys, certificates).
pub(crate) fn create(path: &Path, text: &str, mode: u32) -> Result<()> {
    if !cairn_storage::durable::create_new(path, text.as_bytes(), mode)
        .with_context(|| format!("creating {}", path.display()))?
    {
        anyhow::bail!("{} exists already (it must not exist yet)", path.display());
    }
    Ok(())
}

pub(crate) fn tls_new(args: TlsNewArgs) -> Result<ExitCode> {
    for n in &args.names {
        let ok = !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !ok {
            bail!("{n:?} is not a DNS name (letters, digits, '.' and '-')");
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "Cairn deployment CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    create(&args.out.join("ca.pem"), &ca.pem(), 0o644)?;
    create(&args.out.join("ca.key"), &ca.key().serialize_pem(), 0o600)?;
    for name in &args.names {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(vec![
            name.clone(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])?;
        p.distinguished_name.push(DnType::CommonName, name.as_str());
        let cert = p.signed_by(&key, &ca)?;
        create(&args.out.join(format!("{name}.pem")), &cert.pem(), 0o644)?;
        create(
            &args.out.join(format!("{name}.key")),
            &key.serialize_pem(),
            0o600,
        )?;
    }
    eprintln!(
        "cairn tls: CA and {} certificate(s) in {}; clients verify with {}",
        args.names.len(),
        args.out.display(),
        args.out.join("ca.pem").display()
    );
    Ok(ExitCode::SUCCESS)
}
