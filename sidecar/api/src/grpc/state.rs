//! gRPC state methods: translate protobuf messages into the state block's values.

use bytes::Bytes;
use dapr::dapr::proto::common::v1::{StateItem, StateOptions, state_options};
use dapr::dapr::proto::runtime::v1 as pb;
use tonic::Status;

use super::DaprGrpc;
use blocks::state::{Concurrency, Consistency, DeleteItem, Options, SaveItem, TxOp, errors};

use super::status::{OrStatus, to_status};

fn options(opts: Option<&StateOptions>) -> Options {
    let Some(o) = opts else {
        return Options::default();
    };
    use state_options::{StateConcurrency as C, StateConsistency as S};
    Options {
        concurrency: if o.concurrency == C::ConcurrencyFirstWrite as i32 {
            Concurrency::FirstWrite
        } else {
            Concurrency::LastWrite
        },
        consistency: if o.consistency == S::ConsistencyStrong as i32 {
            Consistency::Strong
        } else {
            Consistency::Eventual
        },
    }
}

fn consistency(value: i32) -> Consistency {
    if value == state_options::StateConsistency::ConsistencyStrong as i32 {
        Consistency::Strong
    } else {
        Consistency::Eventual
    }
}

/// gRPC values are opaque bytes unless the caller marks them `contentType:
/// application/json`, in which case they must parse as JSON, as in Dapr.
fn save_item(item: StateItem) -> Result<SaveItem, Status> {
    let is_json = item
        .metadata
        .get("contentType")
        .is_some_and(|c| c == "application/json");
    if is_json && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&item.value) {
        // Dapr passes the JSON parser's own error through, as code Unknown.
        return Err(Status::unknown(e.to_string()));
    }
    Ok(SaveItem {
        is_json,
        options: Ok(options(item.options.as_ref())),
        key: item.key,
        value: Bytes::from(item.value),
        etag: item.etag.map(|e| e.value),
        metadata: item.metadata,
    })
}

fn delete_item(item: StateItem) -> DeleteItem {
    DeleteItem {
        options: options(item.options.as_ref()),
        key: item.key,
        etag: item.etag.map(|e| e.value),
        metadata: item.metadata,
    }
}

impl DaprGrpc {
    pub(super) async fn get_state_impl(
        &self,
        req: pb::GetStateRequest,
    ) -> Result<pb::GetStateResponse, Status> {
        let value = self
            .api
            .state
            .get(
                &req.store_name,
                &req.key,
                consistency(req.consistency),
                req.metadata,
            )
            .await
            .or_status()?;
        Ok(match value {
            Some(v) => pb::GetStateResponse {
                data: v.data.into(),
                etag: v.etag.unwrap_or_default(),
                metadata: v.metadata,
            },
            None => pb::GetStateResponse::default(),
        })
    }

    pub(super) async fn get_bulk_state_impl(
        &self,
        req: pb::GetBulkStateRequest,
    ) -> Result<pb::GetBulkStateResponse, Status> {
        let parallelism = usize::try_from(req.parallelism).unwrap_or(0);
        let items = self
            .api
            .state
            .bulk_get(&req.store_name, req.keys, parallelism, req.metadata)
            .await
            .or_status()?;
        let items = items
            .into_iter()
            .map(|i| {
                let (data, etag, metadata) = match i.value {
                    Some(v) => (v.data.into(), v.etag.unwrap_or_default(), v.metadata),
                    None => Default::default(),
                };
                pb::BulkStateItem {
                    key: i.key,
                    data,
                    etag,
                    error: i.error.unwrap_or_default(),
                    metadata,
                }
            })
            .collect();
        Ok(pb::GetBulkStateResponse { items })
    }

    pub(super) async fn save_state_impl(&self, req: pb::SaveStateRequest) -> Result<(), Status> {
        self.api.state.check_store(&req.store_name).or_status()?;
        if req.states.is_empty() {
            return Ok(());
        }
        if req.states.iter().any(|i| i.key.is_empty()) {
            return Err(to_status(&errors::empty_key_grpc()));
        }
        let items = req
            .states
            .into_iter()
            .map(save_item)
            .collect::<Result<_, _>>()?;
        self.api
            .state
            .save(&req.store_name, items)
            .await
            .or_status()
    }

    pub(super) async fn delete_state_impl(
        &self,
        req: pb::DeleteStateRequest,
    ) -> Result<(), Status> {
        let item = DeleteItem {
            options: options(req.options.as_ref()),
            key: req.key,
            etag: req.etag.map(|e| e.value),
            metadata: req.metadata,
        };
        self.api
            .state
            .delete(&req.store_name, item)
            .await
            .or_status()
    }

    pub(super) async fn delete_bulk_state_impl(
        &self,
        req: pb::DeleteBulkStateRequest,
    ) -> Result<(), Status> {
        let items = req.states.into_iter().map(delete_item).collect();
        self.api
            .state
            .delete_bulk(&req.store_name, items)
            .await
            .or_status()
    }

    pub(super) async fn execute_state_transaction_impl(
        &self,
        req: pb::ExecuteStateTransactionRequest,
    ) -> Result<(), Status> {
        self.api
            .state
            .check_transactional(&req.store_name)
            .or_status()?;
        let mut ops = Vec::with_capacity(req.operations.len());
        for op in req.operations {
            let item = op.request.unwrap_or_default();
            ops.push(match op.operation_type.as_str() {
                "upsert" => TxOp::Upsert(save_item(item)?),
                "delete" => TxOp::Delete(delete_item(item)),
                other => return Err(to_status(&errors::unsupported_operation(other))),
            });
        }
        self.api
            .state
            .transact(&req.store_name, ops)
            .await
            .or_status()
    }

    pub(super) async fn query_state_impl(
        &self,
        req: pb::QueryStateRequest,
    ) -> Result<pb::QueryStateResponse, Status> {
        let (items, token) = self
            .api
            .state
            .query(&req.store_name, req.query.as_bytes())
            .await
            .or_status()?;
        Ok(pb::QueryStateResponse {
            results: items
                .into_iter()
                .map(|i| pb::QueryStateItem {
                    key: i.key,
                    data: i.data.into(),
                    etag: i.etag.unwrap_or_default(),
                    error: String::new(),
                })
                .collect(),
            token,
            metadata: Default::default(),
        })
    }
}
