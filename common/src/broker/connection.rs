//! Connecting to RabbitMQ: the first node of `THUMBQ_AMQP_URL` that answers.

use lapin::{Connection, ConnectionProperties};

use super::BrokerError;
use crate::settings::AmqpSettings;

/// Opens a connection, named `name` in RabbitMQ's management views, to the first node of `THUMBQ_AMQP_URL` that
/// answers, each within the configured timeout. The nodes are tried in a fresh random order on every call, so
/// processes spread over a cluster's nodes, and a reconnect after a node's loss lands on any survivor.
pub async fn connect(settings: &AmqpSettings, name: &str) -> Result<Connection, BrokerError> {
    let mut nodes = settings.nodes();
    fastrand::shuffle(&mut nodes);
    let mut failures = Vec::new();
    for url in nodes {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        match tokio::time::timeout(settings.timeout, Connection::connect(url, properties)).await {
            Ok(Ok(connection)) => return Ok(connection),
            Ok(Err(e)) => failures.push(format!("{}: {e}", redacted(url))),
            Err(_) => failures.push(format!("{}: no connection within {:?}", redacted(url), settings.timeout)),
        }
    }
    Err(BrokerError::Unavailable(failures.join("; ")))
}

/// A node URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_in_messages_lose_their_passwords() {
        assert_eq!(redacted("amqp://thumbq:s3cret@mq-1:5672/%2f"), "amqp://mq-1:5672/%2f");
        assert_eq!(redacted("amqp://mq-1:5672/%2f"), "amqp://mq-1:5672/%2f");
    }

    #[tokio::test]
    async fn connecting_tries_every_node_and_names_each_failure() {
        // Nothing listens on ports 1 and 2 of loopback: both refuse at once.
        let settings = AmqpSettings {
            url: "amqp://u:p@127.0.0.1:1/%2f,amqp://u:p@127.0.0.1:2/%2f".into(),
            ..crate::Settings::default().amqp
        };
        let Err(BrokerError::Unavailable(message)) = connect(&settings, "test").await else {
            panic!("no node answers")
        };
        assert!(message.contains("127.0.0.1:1") && message.contains("127.0.0.1:2"), "{message}");
        assert!(!message.contains("u:p"), "{message}");
    }
}
