//! The Docker watch inside the daemon: started when `[docker] watch` is on and an engine
//! socket is configured or present; each crash's signal goes through the same router as every
//! other trigger, and its decision is logged as a `docker_signal` event.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::shared::Shared;
use crate::daemon::docker_watch::Watch;

pub(super) async fn docker(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let cfg = shared.config();
    let Some(host) = cfg.docker.socket().filter(|_| cfg.docker.watch) else {
        return;
    };
    let watch = Watch {
        host,
        cfg: cfg.docker.clone(),
        state_dir: cfg.state_dir.clone(),
        redactor: Arc::new(crate::engine::run::redactor(&cfg)),
    };
    let (raise, mut raised) = mpsc::channel(64);
    let watching = tokio::spawn(watch.run(raise, stop));
    // Ends when the watch ends (it drops the sender).
    while let Some(signal) = raised.recv().await {
        let subject = signal.subject.clone();
        let incident = signal.labels.get("incident").cloned();
        let decisions = shared.submit(vec![signal]).await.unwrap_or_default();
        let decision = decisions.first().map_or("error", |d| d.decision());
        shared.event(
            "docker_signal",
            serde_json::json!({"container": subject, "incident": incident, "decision": decision}),
        );
    }
    let _ = watching.await;
}
