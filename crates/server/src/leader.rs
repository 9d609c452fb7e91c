//! Leadership through etcd (issue 19): of several `cairn serve` processes
//! configured with the same logs in a bucket, one writes; the others are
//! warm standbys (they follow the bucket and serve reads,
//! `cairn_log::Sequencer::follow`) and take over when its lease lapses.
//!
//! **Safety never depends on this.** The bucket's conditional writes fence
//! a writer that lost its place (`cairn-storage-s3`): two processes can
//! never both extend a log, whatever etcd says or however long a process
//! pauses. Leadership only decides who should try, so that a standby takes
//! over within about one lease TTL after the leader dies, and a healthy
//! leader is not fenced by an eager standby.
//!
//! The election is etcd's own (v3election `Campaign`, whose leader key is
//! bound to this process's lease); the lease is kept alive at a third of
//! its TTL. When a keep-alive fails or the lease is gone, leadership is
//! lost: the server stops serving and exits with an error (a supervisor
//! restarts it, as a standby).

use std::time::Duration;

use tokio::sync::watch;

use crate::ServeError;

/// Where etcd is and what to campaign for.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// etcd client URLs (`http://127.0.0.1:2379`).
    pub endpoints: Vec<String>,
    /// The election's name: every process that may write the same logs
    /// uses the same one.
    pub election: String,
    /// Lease TTL in seconds: a dead leader's logs are taken over after
    /// about this long.
    pub ttl_s: i64,
}

/// This process's campaign: `elected` turns `true` once it leads, and
/// `lost` turns `Some(why)` if the lease ends (before or after).
pub struct Campaign {
    /// Elected.
    pub elected: watch::Receiver<bool>,
    /// Why the lease was lost, once it is.
    pub lost: watch::Receiver<Option<String>>,
}

fn etcd_err(what: &str, endpoints: &[String]) -> impl Fn(etcd_client::Error) -> ServeError {
    let at = endpoints.join(",");
    let what = what.to_owned();
    move |e| ServeError::Setup(format!("etcd at {at}: {what}: {e}"))
}

/// Connects, takes a lease and starts campaigning in the background (a
/// standby serves reads meanwhile), keeping the lease alive throughout.
/// Errors here (etcd unreachable) stop the start.
pub async fn campaign(cfg: &EtcdConfig) -> Result<Campaign, ServeError> {
    let mut client = etcd_client::Client::connect(&cfg.endpoints, None)
        .await
        .map_err(etcd_err("connecting", &cfg.endpoints))?;
    let lease = client
        .lease_grant(cfg.ttl_s, None)
        .await
        .map_err(etcd_err("granting a lease", &cfg.endpoints))?
        .id();
    let (mut keeper, mut responses) = client
        .lease_keep_alive(lease)
        .await
        .map_err(etcd_err("keeping the lease alive", &cfg.endpoints))?;
    let (lost_tx, lost) = watch::channel(None);
    let every = Duration::from_millis((cfg.ttl_s.max(1) as u64) * 1000 / 3);
    {
        let lost_tx = lost_tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = keeper.keep_alive().await {
                    let _ = lost_tx.send(Some(format!("the etcd lease keep-alive failed: {e}")));
                    return;
                }
                match responses.message().await {
                    Ok(Some(r)) if r.ttl() > 0 => {}
                    Ok(_) => {
                        let _ = lost_tx.send(Some("the etcd lease expired".into()));
                        return;
                    }
                    Err(e) => {
                        let _ =
                            lost_tx.send(Some(format!("the etcd lease keep-alive failed: {e}")));
                        return;
                    }
                }
            }
        });
    }
    let me = format!(
        "{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "cairn".into()),
        std::process::id()
    );
    let (elected_tx, elected) = watch::channel(false);
    let election = cfg.election.clone();
    let at = cfg.endpoints.join(",");
    tokio::spawn(async move {
        match client.campaign(election, me, lease).await {
            Ok(_) => {
                let _ = elected_tx.send(true);
            }
            Err(e) => {
                let _ = lost_tx.send(Some(format!("etcd at {at}: campaigning: {e}")));
            }
        }
        // Keep the sender (and so `elected`) alive with the process.
        elected_tx.closed().await;
    });
    Ok(Campaign { elected, lost })
}
