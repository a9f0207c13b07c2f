//! gRPC GetMetadata / SetMetadata / Shutdown.

use dapr::dapr::proto::runtime::v1 as pb;

use blocks::pubsub::subscriptions::Kind;

use super::DaprGrpc;

impl DaprGrpc {
    pub(super) async fn get_metadata_impl(&self) -> pb::GetMetadataResponse {
        let subscriptions = self
            .api
            .subscriber
            .list()
            .await
            .into_iter()
            .map(|s| pb::PubsubSubscription {
                pubsub_name: s.pubsub,
                topic: s.topic,
                metadata: s.metadata,
                rules: Some(pb::PubsubSubscriptionRules {
                    rules: s
                        .rules
                        .iter()
                        .map(|r| pb::PubsubSubscriptionRule {
                            r#match: r.match_expr().to_string(),
                            path: r.path.clone(),
                        })
                        .collect(),
                }),
                dead_letter_topic: s.dead_letter_topic,
                r#type: match s.kind {
                    Kind::Declarative => pb::PubsubSubscriptionType::Declarative,
                    Kind::Programmatic => pb::PubsubSubscriptionType::Programmatic,
                    Kind::Streaming => pb::PubsubSubscriptionType::Streaming,
                } as i32,
            })
            .collect();
        let view = self.api.metadata.view();
        let m = view.block;
        let conn = &m.app_connection;
        pb::GetMetadataResponse {
            id: m.app_id.clone(),
            runtime_version: m.runtime_version.clone(),
            enabled_features: m.enabled_features.clone(),
            registered_components: view
                .components
                .iter()
                .map(|c| pb::RegisteredComponents {
                    name: c.name.clone(),
                    r#type: c.kind.clone(),
                    version: c.version.clone(),
                    capabilities: c.capabilities.clone(),
                })
                .collect(),
            extended_metadata: view.extended.into_iter().collect(),
            subscriptions,
            http_endpoints: m
                .http_endpoints
                .iter()
                .map(|name| pb::MetadataHttpEndpoint { name: name.clone() })
                .collect(),
            app_connection_properties: Some(pb::AppConnectionProperties {
                port: i32::from(conn.port),
                protocol: conn.protocol.clone(),
                channel_address: conn.channel_address.clone(),
                max_concurrency: i32::try_from(conn.max_concurrency).unwrap_or(i32::MAX),
                health: conn
                    .health
                    .as_ref()
                    .map(|h| pb::AppConnectionHealthProperties {
                        health_check_path: h.check_path.clone(),
                        health_probe_interval: h.probe_interval.clone(),
                        health_probe_timeout: h.probe_timeout.clone(),
                        health_threshold: i32::try_from(h.threshold).unwrap_or(i32::MAX),
                    }),
            }),
            actor_runtime: Some(pb::ActorRuntime {
                runtime_status: pb::actor_runtime::ActorRuntimeStatus::Disabled as i32,
                active_actors: Vec::new(),
                host_ready: false,
                placement: "placement: disconnected".to_string(),
            }),
            ..Default::default()
        }
    }
}
