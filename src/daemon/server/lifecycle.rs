//! The daemon's life: [`Daemon::open`] loads the configuration, takes the state directory's lock
//! and recovers what a dead steward left; [`Daemon::start`] serves on a listener the caller bound
//! until a shutdown future resolves, then ends the work in progress and removes its traces.
//! [`serve`] is `steward serve`: the process's signals, the configured address, then both.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, mpsc as std_mpsc};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Notify, watch};

use super::auth::Tokens;
use super::routing::{self, RouteRequest};
use super::shared::{Shared, scheduled};
use super::stopping::{Signals, Stop, Stopping};
use super::{
    ServeError, ServeOptions, conn, docker, handlers, health, metrics, scheduler, upkeep, worker,
};
use crate::base::cancel::Canceller;
use crate::base::ledger::Ledger;
use crate::config::Config;
use crate::daemon::daemon_lock::{self, DaemonLock};
use crate::daemon::handoff::{self, DaemonInfo};
use crate::daemon::queue::{Queue, Recovered};
use crate::daemon::router::Router;

/// The pid file and the socket: how a trigger finds the daemon.
struct Presence {
    info_path: PathBuf,
    socket: PathBuf,
}

impl Drop for Presence {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.info_path);
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn notify_systemd(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// The listeners' connection caps for this process's open-file limit, logged.
fn connection_caps(cfg: &Config) -> Result<conn::Caps, ServeError> {
    let caps = conn::Caps::for_this_process(&cfg.serve)?;
    if caps.lowered {
        tracing::warn!(
            "serve.max_connections = {} lowered to {}: the open-file limit is {}, of which {} \
             are kept for steward's own files and {} for daemon.sock (raise LimitNOFILE= for more)",
            cfg.serve.max_connections,
            caps.tcp,
            caps.nofile,
            caps.reserve,
            caps.local
        );
    }
    tracing::info!(
        tcp = caps.tcp,
        local = caps.local,
        nofile = caps.nofile,
        reserve = caps.reserve,
        "connection caps"
    );
    Ok(caps)
}

/// Runs the daemon until SIGTERM or SIGINT (SIGHUP reloads). Returns after the worker stopped
/// and the daemon's traces (pid file, socket) are gone.
pub async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    // Handlers first: a SIGTERM right after READY must stop the daemon cleanly, not kill it.
    let signals = Signals::install().map_err(|source| ServeError::Io {
        what: "cannot install signal handlers".into(),
        source,
    })?;
    let daemon = Daemon::open(opts)?;
    let listen = daemon.listen_addr();
    let tcp = TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen.to_string(),
            source,
        })?;
    let shared = daemon.shared.clone();
    daemon
        .start(tcp, signals.stop(move || shared.reload()))
        .await
}

/// A daemon opened on its state directory, not yet serving.
pub struct Daemon {
    shared: Arc<Shared>,
    requests: std_mpsc::Receiver<RouteRequest>,
    listen: SocketAddr,
    caps: conn::Caps,
    recovered: Recovered,
    crashed: Vec<crate::engine::recover::Recovered>,
    /// The proof this daemon lives (not the pid in `daemon.json`); held until it stops.
    _alive: DaemonLock,
}

/// The daemon's tasks and threads while it serves.
struct Running {
    stop_tx: watch::Sender<bool>,
    http: tokio::task::JoinHandle<()>,
    local: tokio::task::JoinHandle<()>,
    work: tokio::task::JoinHandle<()>,
    timer: tokio::task::JoinHandle<()>,
    retention: tokio::task::JoinHandle<()>,
    notify: tokio::task::JoinHandle<()>,
    docker: tokio::task::JoinHandle<()>,
    drift: tokio::task::JoinHandle<()>,
    routing: Vec<std::thread::JoinHandle<()>>,
    canceller: Canceller,
}

impl Daemon {
    /// Loads the configuration and the webhook tokens, takes the state directory's lock (a
    /// second daemon on it stops here) and recovers what a dead steward left: its runs recorded
    /// `crashed`, then its jobs queued again.
    pub fn open(opts: ServeOptions) -> Result<Daemon, ServeError> {
        let cfg = Config::load(&opts.config_args)?.config;
        let listen_text = opts.listen.clone().unwrap_or(cfg.serve.listen.clone());
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| ServeError::BadListen(listen_text.clone()))?;
        let tokens = Tokens::load(&opts, &cfg)?;
        tokens.log();
        let ui = super::ui::Ui::open(&cfg, &tokens)?.map(Arc::new);
        let caps = connection_caps(&cfg)?;
        std::fs::create_dir_all(&cfg.state_dir).map_err(|source| ServeError::Io {
            what: format!("cannot create {}", cfg.state_dir.display()),
            source,
        })?;
        // Before anything is recovered: the lock, not a pid in `daemon.json`, is the proof a
        // daemon lives.
        let alive = daemon_lock::hold(&cfg.state_dir)?;
        let ledger = Ledger::open(&cfg.state_dir)?;
        let queue = Queue::open(&cfg.state_dir)?;
        let mut router = Router::open(&cfg, queue.clone())?;
        // First what a dead steward left running (its processes ended, its runs recorded
        // `crashed`), then its jobs: a recovered job must never run beside its orphaned agent.
        let crashed = crate::engine::recover::recover_logged(&ledger);
        let recovered = router.recover_queue(OffsetDateTime::now_utc())?;
        // Before the listener: a goal with a bad schedule stops the start, with its file and line.
        let entries = scheduled(&cfg)?;
        let (routing, requests) = std_mpsc::channel();
        let shared = Arc::new(Shared {
            opts,
            config: RwLock::new(Arc::new(cfg)),
            router: Mutex::new(router),
            queue,
            routing: Mutex::new(Some(routing)),
            tokens: RwLock::new(tokens),
            ledger,
            health: health::Health::default(),
            wake: Notify::new(),
            metrics: metrics::Metrics::new(),
            schedule: RwLock::new(Arc::new(entries)),
            rescheduled: Notify::new(),
            ui,
            catalog: Mutex::new(None),
        });
        Ok(Daemon {
            shared,
            requests,
            listen,
            caps,
            recovered,
            crashed,
            _alive: alive,
        })
    }

    /// Where the configuration (or `--listen`) says the daemon listens.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Serves on `tcp` (bound by the caller: port 0 works) and on `daemon.sock` until `shutdown`
    /// resolves, then gives the current run the grace to finish and stops. Returns after the
    /// worker stopped and the daemon's traces (pid file, socket) are gone.
    pub async fn start<S>(self, tcp: TcpListener, shutdown: S) -> Result<(), ServeError>
    where
        S: Future,
        S::Output: Into<Stop>,
    {
        let cfg = self.shared.config();
        let bound = tcp.local_addr().map_err(|source| ServeError::Io {
            what: "cannot read the bound address".into(),
            source,
        })?;
        let (unix, socket) = bind_socket(&cfg.state_dir)?;
        let info = DaemonInfo {
            pid: std::process::id(),
            listen: bound.to_string(),
            socket: socket.clone(),
        };
        let info_path = handoff::daemon_file(&cfg.state_dir);
        crate::base::ledger::write_json(&info_path, &info)?;
        let _presence = Presence { info_path, socket };
        self.started_event(bound);
        // `_alive` is held until this returns.
        let Daemon {
            shared,
            requests,
            caps,
            _alive,
            ..
        } = self;
        let running = spawn(&shared, requests, caps, tcp, unix)?;
        // The first line on stdout says where the daemon listens (tests read it; port 0 works).
        // Not println!: a closed stdout must not panic the daemon.
        let _ = std::io::Write::write_fmt(
            &mut std::io::stdout(),
            format_args!("steward serve listening on http://{bound}\n"),
        );
        tracing::info!(%bound, "listening");
        notify_systemd(&[sd_notify::NotifyState::Ready]);
        let watchdog = sd_notify::watchdog_enabled().map(|d| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(d / 2);
                loop {
                    tick.tick().await;
                    notify_systemd(&[sd_notify::NotifyState::Watchdog]);
                }
            })
        });
        let mut stop: Stop = shutdown.await.into();
        notify_systemd(&[sd_notify::NotifyState::Stopping]);
        tracing::info!("{}: stopping", stop.why);
        let grace = Duration::from_secs(cfg.serve.grace_secs);
        let kill_grace = Duration::from_secs(cfg.claude.kill_grace_secs);
        let ended = running.stop(&shared, grace, kill_grace, &mut stop).await;
        if let Some(w) = watchdog {
            w.abort();
        }
        shared.event(
            "daemon_stopped",
            serde_json::json!({"signal": stop.why.name(), "worker": ended}),
        );
        tracing::info!("{ended}");
        Ok(())
    }

    /// `daemon_started`: where it listens, what it recovered, its caps and schedule.
    fn started_event(&self, bound: SocketAddr) {
        let shared = &self.shared;
        let recovered = &self.recovered;
        shared.event(
            "daemon_started",
            serde_json::json!({"pid": std::process::id(), "listen": bound.to_string(),
                "recovered": recovered.requeued, "quarantined": recovered.quarantined,
                "tmp_removed": recovered.tmp_removed, "crashed_runs": self.crashed,
                "connections": self.caps,
                "scheduled": shared.schedule().iter()
                    .map(|e| serde_json::json!({"goal": e.goal, "schedule": e.expr}))
                    .collect::<Vec<_>>()}),
        );
    }
}

/// Starts the routing threads, both listeners, the worker, the scheduler, retention, the
/// notifications, the Docker watch and the drift pass.
fn spawn(
    shared: &Arc<Shared>,
    requests: std_mpsc::Receiver<RouteRequest>,
    caps: conn::Caps,
    tcp: TcpListener,
    unix: UnixListener,
) -> Result<Running, ServeError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let routing = routing::start_routing(shared, requests).map_err(|source| ServeError::Io {
        what: "cannot start the routing threads".into(),
        source,
    })?;
    let header_read_timeout = Duration::from_secs(shared.config().serve.header_read_timeout_secs);
    let bounds = |max_connections| conn::Bounds {
        header_read_timeout,
        max_connections,
    };
    let http = tokio::spawn(conn::serve(
        tcp,
        handlers::app(shared.clone()),
        bounds(caps.tcp),
        stop_rx.clone(),
    ));
    let local = tokio::spawn(conn::serve(
        unix,
        handlers::local_app(shared.clone()),
        bounds(caps.local),
        stop_rx.clone(),
    ));
    let (canceller, cancel) = crate::base::cancel::pair();
    let queue = shared.queue.clone();
    let work = tokio::spawn(worker::worker(
        shared.clone(),
        queue,
        stop_rx.clone(),
        cancel,
    ));
    let timer = tokio::spawn(scheduler::scheduler(shared.clone(), stop_rx.clone()));
    let notify = tokio::spawn(super::notify_loop::notify_loop(
        shared.clone(),
        stop_rx.clone(),
    ));
    let docker = tokio::spawn(docker::docker(shared.clone(), stop_rx.clone()));
    let drift = tokio::spawn(super::drift_pass::drift_pass(
        shared.clone(),
        stop_rx.clone(),
    ));
    let retention = tokio::spawn(upkeep::retention(shared.clone(), stop_rx));
    super::ui::runs::warm(shared);
    Ok(Running {
        stop_tx,
        http,
        local,
        work,
        timer,
        retention,
        notify,
        docker,
        drift,
        routing,
        canceller,
    })
}

/// `daemon.sock` in the state directory, owner only.
fn bind_socket(state_dir: &Path) -> Result<(UnixListener, PathBuf), ServeError> {
    let socket = handoff::daemon_socket(state_dir);
    // A socket left by a daemon that died would make bind fail; this daemon holds the lock, so
    // no live one is displaced.
    let _ = std::fs::remove_file(&socket);
    let unix = UnixListener::bind(&socket).map_err(|source| ServeError::Bind {
        addr: socket.display().to_string(),
        source,
    })?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).map_err(
        |source| ServeError::Io {
            what: format!("cannot restrict {}", socket.display()),
            source,
        },
    )?;
    Ok((unix, socket))
}

impl Running {
    /// Tells every task to stop, gives the current run its grace, waits for the listeners and
    /// loops, then closes the routing and writes back what is kept in memory. Returns what
    /// became of the worker.
    async fn stop(
        mut self,
        shared: &Shared,
        grace: Duration,
        kill_grace: Duration,
        stop: &mut Stop,
    ) -> String {
        let _ = self.stop_tx.send(true);
        // The page's live streams would hold their connections open past the stop.
        if let Some(ui) = &shared.ui {
            let _ = ui.stopping.send(true);
        }
        let stopping = Stopping {
            grace,
            kill_grace,
            canceller: self.canceller,
        };
        shared.wake.notify_one();
        let why = stop.why;
        let page_work = async {
            match &shared.ui {
                Some(ui) => Some(
                    ui.work
                        .finish(why, grace, kill_grace + super::stopping::RECORD_GRACE)
                        .await,
                ),
                None => None,
            }
        };
        let (ended, page) = tokio::join!(stopping.finish(shared, &mut self.work, stop), page_work);
        let ended = match page {
            Some(page) => format!("{ended}; work the page started: {page}"),
            None => ended,
        };
        let _ = self.http.await;
        let _ = self.local.await;
        let _ = self.timer.await;
        let _ = self.retention.await;
        let _ = self.notify.await;
        let _ = self.docker.await;
        let _ = self.drift.await;
        // Every request is answered by now: close the routing and let its threads finish.
        if let Ok(mut routing) = shared.routing.lock() {
            routing.take();
        }
        let threads = self.routing;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        shared.save_router_state();
        if let Err(e) = shared.queue.write_back() {
            tracing::error!("cannot write the merge counts back to the job files: {e}");
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::cancel::StopSignal;
    use crate::config::ConfigArgs;

    const TOKEN: &str = "in-process-token-0123456789";

    /// Every event of `kind` in the state directory's event log.
    fn events(state: &Path, kind: &str) -> Vec<serde_json::Value> {
        let Ok(entries) = std::fs::read_dir(state.join("events")) else {
            return Vec::new();
        };
        entries
            .flat_map(|e| {
                std::fs::read_to_string(e.unwrap().path())
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .filter(|v| v["kind"] == kind)
            .collect()
    }

    /// The daemon in this process, on a port-0 listener the test bound: a webhook is routed and
    /// recorded, and the shutdown future (not a signal) stops it and removes its traces.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_daemon_started_in_process_routes_a_webhook_and_stops_on_its_future() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("steward.toml");
        // Paused: the queued job waits, no claude is needed.
        std::fs::write(&config, "[serve]\npaused = true\npoll_secs = 1\n").unwrap();
        let token = dir.path().join("webhook-token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        let state = dir.path().join("state");
        let daemon = Daemon::open(ServeOptions {
            config_args: ConfigArgs {
                file: Some(config),
                overrides: Vec::new(),
                state_dir: Some(state.clone()),
            },
            listen: None,
            webhook_token_file: Some(token),
        })
        .unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", tcp.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = daemon.start(tcp, async move {
            let _ = stopped.await;
            StopSignal::Terminate
        });
        let client = async {
            let body = serde_json::json!({"version": "4", "status": "firing", "alerts": [
                {"status": "firing", "fingerprint": "fp-1",
                 "labels": {"alertname": "DiskFull", "instance": "h1", "severity": "critical"}}]});
            let answer = reqwest::Client::new()
                .post(format!("{url}/hooks/alertmanager"))
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = answer.status();
            let answer: serde_json::Value = answer.json().await.unwrap();
            // While it serves, a trigger finds it.
            let present = handoff::daemon_file(&state).exists();
            stop.send(()).unwrap();
            (status, answer, present)
        };
        let (served, (status, answer, present)) =
            tokio::time::timeout(Duration::from_secs(60), async {
                tokio::join!(served, client)
            })
            .await
            .unwrap();
        served.unwrap();
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["accepted"], 1, "{answer}");
        assert_eq!(answer["decisions"][0]["subject"], "DiskFull/h1", "{answer}");
        assert_eq!(answer["decisions"][0]["fingerprint"], "fp-1", "{answer}");
        assert_eq!(answer["decisions"][0]["decision"], "enqueue", "{answer}");
        assert!(present, "daemon.json while serving");
        assert!(!handoff::daemon_file(&state).exists());
        assert!(!handoff::daemon_socket(&state).exists());
        let started = events(&state, "daemon_started");
        assert_eq!(started.len(), 1, "{started:?}");
        let stopped = events(&state, "daemon_stopped");
        assert_eq!(stopped.len(), 1, "{stopped:?}");
        assert_eq!(stopped[0]["signal"], "SIGTERM", "{stopped:?}");
        assert_eq!(stopped[0]["worker"], "the worker finished", "{stopped:?}");
    }
}
