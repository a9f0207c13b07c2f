//! `/v1.0/state/...` and `/v1.0-alpha1/state/{store}/query`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::body::Body;
use super::compact::compact_json;
use super::params::{Params, StoreKey};
use crate::Api;
use blocks::errors::DaprError;
use blocks::state::{DeleteItem, Options, SaveItem, StateError, StateValue, TxOp, errors};

use super::errors::HttpError;

#[derive(Deserialize, Default)]
struct OptionsJson {
    #[serde(default)]
    concurrency: String,
    #[serde(default)]
    consistency: String,
}

/// One item of a save body. The value borrows from the request body: it is copied once,
/// compacted, into the stored bytes.
#[derive(Deserialize, Default)]
struct SaveJson<'a> {
    #[serde(default)]
    key: String,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, String>,
    #[serde(default)]
    options: Option<OptionsJson>,
}

impl SaveJson<'_> {
    /// The value is stored as the JSON the caller sent (`"text"` keeps its quotes), which
    /// is what Dapr stores for HTTP saves.
    fn into_item(self, query_meta: &HashMap<String, String>) -> Result<SaveItem, HttpError> {
        let opts = self.options.unwrap_or_default();
        let mut metadata = self.metadata;
        metadata.extend(query_meta.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(SaveItem {
            key: self.key,
            value: self
                .value
                .map(|v| Bytes::from(compact_json(v.get().as_bytes())))
                .unwrap_or_default(),
            is_json: true,
            etag: self.etag,
            options: Options::parse(&opts.concurrency, &opts.consistency),
            metadata,
        })
    }

    fn into_delete(
        self,
        query_meta: &HashMap<String, String>,
        fail: &dyn Fn(StateError) -> DaprError,
    ) -> Result<DeleteItem, HttpError> {
        let opts = self.options.unwrap_or_default();
        let mut metadata = self.metadata;
        metadata.extend(query_meta.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(DeleteItem {
            key: self.key,
            etag: self.etag,
            options: Options::parse(&opts.concurrency, &opts.consistency).map_err(fail)?,
            metadata,
        })
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn value_headers(resp: &mut Response, value: &StateValue) {
    let headers = resp.headers_mut();
    if let Some(etag) = value
        .etag
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        headers.insert(header::ETAG, etag);
    }
    for (k, v) in &value.metadata {
        if let (Ok(name), Ok(val)) = (
            HeaderName::try_from(format!("metadata.{k}")),
            HeaderValue::from_str(v),
        ) {
            headers.insert(name, val);
        }
    }
}

/// `GET /v1.0/state/{store}/{key}`: the raw value with its ETag, or 204 when missing.
pub async fn get(
    State(api): State<Arc<Api>>,
    StoreKey { store, key }: StoreKey,
    params: Params,
) -> Result<Response, HttpError> {
    // Dapr passes a read's consistency to the store unchecked and its stores read an
    // unknown model as the default, so only `strong` changes anything.
    let consistency = Options::parse("", &params.consistency)
        .map(|o| o.consistency)
        .unwrap_or_default();
    let Some(value) = api
        .state
        .get(&store, &key, consistency, params.metadata)
        .await?
    else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let mut resp = json_response(StatusCode::OK, Vec::new());
    value_headers(&mut resp, &value);
    *resp.body_mut() = axum::body::Body::from(value.data);
    Ok(resp)
}

/// `POST|PUT /v1.0/state/{store}`: a JSON array of items to save.
pub async fn save(
    State(api): State<Arc<Api>>,
    Path(store): Path<String>,
    params: Params,
    body: Body,
) -> Result<StatusCode, HttpError> {
    api.state.check_store(&store)?;
    let items: Vec<SaveJson> = body.json("")?;
    if items.is_empty() {
        return Ok(StatusCode::NO_CONTENT);
    }
    // Dapr checks every key before the store sees any option: an illegal key anywhere is
    // the request's 400, ahead of a bad option's 500.
    for item in &items {
        api.state.check_key(&store, &item.key)?;
    }
    let items = items
        .into_iter()
        .map(|i| i.into_item(&params.metadata))
        .collect::<Result<_, _>>()?;
    api.state.save(&store, items).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1.0/state/{store}/{key}`: `If-Match` carries the ETag.
pub async fn delete(
    State(api): State<Arc<Api>>,
    StoreKey { store, key }: StoreKey,
    headers: HeaderMap,
    params: Params,
) -> Result<StatusCode, HttpError> {
    let etag = match headers.get(header::IF_MATCH) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| DaprError::malformed("If-Match header is not valid text"))?
                .to_string(),
        ),
        None => None,
    };
    // The store is checked first, then the options, as Dapr's handler and store do.
    api.state.check_store(&store)?;
    let options = Options::parse(&params.concurrency, &params.consistency)
        .map_err(|e| errors::delete_failed(&key, e))?;
    api.state
        .delete(
            &store,
            DeleteItem {
                key,
                etag,
                options,
                metadata: params.metadata,
            },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct BulkGetJson {
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    parallelism: i64,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

#[derive(Serialize)]
struct BulkItemJson<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a HashMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// Values that are not JSON (saved as raw bytes over gRPC) are sent as a JSON string.
fn as_json(data: &[u8], scratch: &mut Vec<Box<RawValue>>) -> Option<usize> {
    if data.is_empty() {
        return None;
    }
    let raw = match serde_json::from_slice::<&RawValue>(data) {
        Ok(r) => r.to_owned(),
        Err(_) => {
            RawValue::from_string(serde_json::to_string(&String::from_utf8_lossy(data)).ok()?)
                .ok()?
        }
    };
    scratch.push(raw);
    Some(scratch.len() - 1)
}

/// `POST|PUT /v1.0/state/{store}/bulk`: values for many keys, in request order.
pub async fn bulk_get(
    State(api): State<Arc<Api>>,
    Path(store): Path<String>,
    params: Params,
    body: Body,
) -> Result<Response, HttpError> {
    api.state.check_store(&store)?;
    let req: BulkGetJson = body.json("failed deserializing HTTP body: ")?;
    let mut metadata = req.metadata;
    metadata.extend(params.metadata);
    let parallelism = usize::try_from(req.parallelism).unwrap_or(0);
    let items = api
        .state
        .bulk_get(&store, req.keys, parallelism, metadata)
        .await?;
    let mut scratch = Vec::new();
    let indices: Vec<Option<usize>> = items
        .iter()
        .map(|i| {
            i.value
                .as_ref()
                .and_then(|v| as_json(&v.data, &mut scratch))
        })
        .collect();
    let out: Vec<BulkItemJson> = items
        .iter()
        .zip(indices)
        .map(|(item, idx)| BulkItemJson {
            key: &item.key,
            data: idx.map(|i| scratch[i].as_ref()),
            etag: item.value.as_ref().and_then(|v| v.etag.as_deref()),
            metadata: item
                .value
                .as_ref()
                .map(|v| &v.metadata)
                .filter(|m| !m.is_empty()),
            error: item.error.as_deref(),
        })
        .collect();
    let json = serde_json::to_vec(&out).map_err(|e| DaprError::malformed(e.to_string()))?;
    Ok(json_response(StatusCode::OK, json))
}

#[derive(Deserialize)]
struct TxJson<'a> {
    #[serde(borrow, default)]
    operations: Vec<TxOpJson<'a>>,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

/// Both fields may be missing, as in Dapr: no `operation` is an unsupported one.
#[derive(Deserialize)]
struct TxOpJson<'a> {
    #[serde(default)]
    operation: String,
    #[serde(borrow, default)]
    request: SaveJson<'a>,
}

/// `POST|PUT /v1.0/state/{store}/transaction`: all operations apply, or none.
pub async fn transaction(
    State(api): State<Arc<Api>>,
    Path(store): Path<String>,
    params: Params,
    body: Body,
) -> Result<StatusCode, HttpError> {
    api.state.check_transactional(&store)?;
    let tx: TxJson = body.json("failed deserializing HTTP body: ")?;
    let _request_metadata = tx.metadata;
    let mut ops = Vec::with_capacity(tx.operations.len());
    for op in tx.operations {
        ops.push(match op.operation.as_str() {
            "upsert" => TxOp::Upsert(op.request.into_item(&params.metadata)?),
            "delete" => TxOp::Delete(
                op.request
                    .into_delete(&params.metadata, &errors::transaction_failed)?,
            ),
            other => return Err(errors::unsupported_operation(other).into()),
        });
    }
    api.state.transact(&store, ops).await.map_err(|e| {
        // Dapr's HTTP handler overwrites the key with the empty result of the failed key
        // check before it builds the error, so its BadRequest names no field here.
        if e.reason == Some("DAPR_STATE_ILLEGAL_KEY") {
            e.without_violation_field()
        } else {
            e
        }
    })?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct QueryItemJson<'a> {
    key: &'a str,
    data: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<&'a str>,
}

#[derive(Serialize)]
struct QueryJson<'a> {
    results: Vec<QueryItemJson<'a>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    token: &'a str,
}

/// `POST|PUT /v1.0-alpha1/state/{store}/query`: 200 with results, 204 when none match.
pub async fn query(
    State(api): State<Arc<Api>>,
    Path(store): Path<String>,
    body: Body,
) -> Result<Response, HttpError> {
    let (items, token) = api.state.query(&store, &body.0).await?;
    if items.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut scratch = Vec::new();
    let indices: Vec<Option<usize>> = items
        .iter()
        .map(|i| as_json(&i.data, &mut scratch))
        .collect();
    let results = items
        .iter()
        .zip(indices)
        .filter_map(|(item, idx)| {
            Some(QueryItemJson {
                key: &item.key,
                data: scratch[idx?].as_ref(),
                etag: item.etag.as_deref(),
            })
        })
        .collect();
    let json = serde_json::to_vec(&QueryJson {
        results,
        token: &token,
    })
    .map_err(|e| DaprError::malformed(e.to_string()))?;
    Ok(json_response(StatusCode::OK, json))
}
