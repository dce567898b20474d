//! The running dial-out sources. A reload keeps a connection whose
//! settings did not change — the controller does not resend what it pushed
//! while we were away — restarts a changed one and stops a removed one.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::unifi_ws::UnifiWs;
use crate::store::Journal;

/// The connections running now.
pub struct Dialers {
    journal: Arc<dyn Journal>,
    running: Vec<Running>,
}

struct Running {
    dialer: UnifiWs,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Dialers {
    pub fn new(journal: Arc<dyn Journal>) -> Dialers {
        Dialers {
            journal,
            running: Vec::new(),
        }
    }

    /// Make the running connections those of `wanted`; returns what changed,
    /// in words.
    pub async fn update(&mut self, wanted: &[UnifiWs]) -> Vec<String> {
        let mut changes = Vec::new();
        let mut kept = Vec::new();
        // Sources stopped to reconnect: not also reported as added.
        let mut reconnecting = Vec::new();
        for running in std::mem::take(&mut self.running) {
            if wanted.iter().any(|w| w.same_as(&running.dialer)) {
                kept.push(running);
            } else {
                let name = running.dialer.name.clone();
                stop(running).await;
                if wanted.iter().any(|w| w.name == name) {
                    changes.push(format!("source {name} reconnects with its new settings"));
                    reconnecting.push(name);
                } else {
                    changes.push(format!("source {name} removed"));
                }
            }
        }
        for dialer in wanted {
            if kept.iter().any(|r| r.dialer.same_as(dialer)) {
                continue;
            }
            if !reconnecting.contains(&dialer.name) {
                changes.push(format!("source {} added", dialer.name));
            }
            let (stop, stopping) = watch::channel(false);
            let task = tokio::spawn(dialer.clone().run(self.journal.clone(), stopping));
            kept.push(Running {
                dialer: dialer.clone(),
                stop,
                task,
            });
        }
        self.running = kept;
        changes
    }

    /// Close every connection.
    pub async fn stop_all(&mut self) {
        for running in std::mem::take(&mut self.running) {
            stop(running).await;
        }
    }
}

async fn stop(running: Running) {
    let _ = running.stop.send(true);
    let _ = running.task.await;
}
