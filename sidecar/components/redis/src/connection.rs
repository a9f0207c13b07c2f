//! How this crate's components reach their server: Dapr's shared Redis connection metadata,
//! read once so that `state.redis` and `pubsub.redis` accept the same settings.

use std::time::Duration;

use redis::aio::ConnectionManager;

use components_core::{ComponentError, Properties};

/// A configured server: the client to open connections with, and Dapr's timeouts.
pub(crate) struct Server {
    pub client: redis::Client,
    pub host: String,
    /// How long a reply may take (`readTimeout`, Dapr's default 3 s).
    pub read_timeout: Duration,
    /// How long connecting may take (`dialTimeout`, Dapr's default 5 s).
    pub dial_timeout: Duration,
}

impl Server {
    /// Reads `redisHost` (required), `redisPassword`, `redisUsername`, `redisDB`,
    /// `readTimeout` and `dialTimeout`; `enableTLS` is refused until it is supported.
    pub fn from_properties(props: &Properties) -> Result<Self, ComponentError> {
        let host = props
            .get("redisHost")
            .ok_or_else(|| ComponentError::Metadata("redisHost is required".into()))?;
        if props.flag("enableTLS") {
            return Err(ComponentError::Metadata(
                "enableTLS is not supported yet".into(),
            ));
        }
        let db: i64 = props.parse("redisDB")?.unwrap_or(0);
        let mut info =
            redis::IntoConnectionInfo::into_connection_info(format!("redis://{host}/{db}"))
                .map_err(|e| ComponentError::Metadata(format!("redisHost {host:?}: {e}")))?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = props.get("redisUsername") {
            settings = settings.set_username(user);
        }
        if let Some(password) = props.get("redisPassword") {
            settings = settings.set_password(password);
        }
        info = info.set_redis_settings(settings);
        let client =
            redis::Client::open(info).map_err(|e| ComponentError::Connect(e.to_string()))?;
        Ok(Self {
            client,
            host: host.to_string(),
            read_timeout: props
                .duration("readTimeout")?
                .unwrap_or(Duration::from_secs(3)),
            dial_timeout: props
                .duration("dialTimeout")?
                .unwrap_or(Duration::from_secs(5)),
        })
    }

    /// A reconnecting connection for ordinary commands. A reply that does not come in
    /// time fails the request instead of hanging it.
    pub async fn manager(&self) -> Result<ConnectionManager, ComponentError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.read_timeout))
            .set_connection_timeout(Some(self.dial_timeout));
        ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(|e| ComponentError::Connect(format!("redis at {}: {e}", self.host)))
    }
}
