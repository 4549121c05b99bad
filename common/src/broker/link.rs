//! The API's link to RabbitMQ. A background task owns the connection: it connects, opens a confirm-mode channel and
//! declares the topology (every step bounded by `THUMBQ_AMQP_TIMEOUT_MS`), watches the connection, and reconnects
//! with backoff when it breaks. Requests only read the link's current state, so no request ever waits on another's
//! network I/O: while connected they get the publisher at once; while disconnected, a `BrokerError` at once; while
//! a connection attempt is under way, they wait for it, never longer than the AMQP timeout.

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use super::{BrokerError, Publisher, Topology, connect};
use crate::{
    reconnect::{Backoff, Outage, reconnect_backoff},
    settings::AmqpSettings,
};

/// How often a healthy connection is checked, besides the checks requests ask for.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Where the link stands.
#[derive(Clone)]
enum State {
    /// A connection attempt is under way.
    Connecting,
    /// Connected: publish with this.
    Up(Publisher),
    /// The last attempt failed, or the connection broke; the next attempt waits out a backoff.
    Down(String),
}

/// A handle on the link; requests call [`PublisherLink::get`].
pub struct PublisherLink {
    state: watch::Receiver<State>,
    check: Arc<Notify>,
    timeout: Duration,
    stop: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl PublisherLink {
    /// Starts the background task; it connects right away, under the connection name `name`.
    pub fn start(settings: AmqpSettings, topology: Topology, name: &str) -> Self {
        let (sender, state) = watch::channel(State::Connecting);
        let (check, stop, timeout) = (Arc::new(Notify::new()), CancellationToken::new(), settings.timeout);
        let task =
            tokio::spawn(maintain(settings, Arc::new(topology), name.to_owned(), sender, check.clone(), stop.clone()));
        Self { state, check, timeout, stop, task: std::sync::Mutex::new(Some(task)) }
    }

    /// The publisher, or why there is none; never waits longer than the AMQP timeout.
    pub async fn get(&self) -> Result<Publisher, BrokerError> {
        let mut state = self.state.clone();
        let wait = async {
            loop {
                let current = state.borrow_and_update().clone();
                match current {
                    State::Up(publisher) if publisher.is_open() => return Ok(publisher),
                    State::Up(_) => {
                        self.check.notify_one();
                        return Err(BrokerError::Unavailable("the connection was lost; reconnecting".into()));
                    }
                    State::Down(reason) => return Err(BrokerError::Unavailable(reason)),
                    State::Connecting => {}
                }
                if state.changed().await.is_err() {
                    return Err(BrokerError::Unavailable("the API is stopping".into()));
                }
            }
        };
        tokio::time::timeout(self.timeout, wait)
            .await
            .unwrap_or_else(|_| Err(BrokerError::Unavailable(format!("still connecting after {:?}", self.timeout))))
    }

    /// Stops the task and closes the connection (bounded by the AMQP timeout).
    pub async fn close(&self) {
        self.stop.cancel();
        let task = self.task.lock().ok().and_then(|mut task| task.take());
        if let Some(task) = task {
            let _ = tokio::time::timeout(self.timeout * 2, task).await;
        }
    }
}

/// The background task: connect, watch, reconnect, until `stop`.
async fn maintain(
    settings: AmqpSettings,
    topology: Arc<Topology>,
    name: String,
    state: watch::Sender<State>,
    check: Arc<Notify>,
    stop: CancellationToken,
) {
    let (mut backoff, outage) = (reconnect_backoff(), Outage::new("rabbitmq"));
    while !stop.is_cancelled() {
        state.send_replace(State::Connecting);
        let attempt = async {
            let connection = connect(&settings, &name).await?;
            let publisher = Publisher::open(&connection, topology.clone(), settings.timeout).await?;
            publisher.declare_topology().await?;
            Ok::<_, BrokerError>((connection, publisher))
        };
        let attempt = tokio::select! {
            attempt = attempt => attempt,
            () = stop.cancelled() => break,
        };
        match attempt {
            Ok((connection, publisher)) => {
                outage.recovered();
                backoff.reset();
                state.send_replace(State::Up(publisher.clone()));
                while connection.status().connected() && publisher.is_open() {
                    tokio::select! {
                        () = check.notified() => {}
                        () = tokio::time::sleep(CHECK_EVERY) => {}
                        () = stop.cancelled() => {
                            let closing = connection.close(200, "shutting down".into());
                            let _ = tokio::time::timeout(settings.timeout, closing).await;
                            return;
                        }
                    }
                }
                outage.failed(&"the connection was lost");
                state.send_replace(State::Down("the connection was lost; reconnecting".into()));
            }
            Err(e) => {
                outage.failed(&e);
                state.send_replace(State::Down(e.to_string()));
            }
        }
        let delay = backoff.next_backoff().unwrap_or(Duration::from_secs(5));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => {}
        }
    }
}
