//! `state.redis`: values in Redis hashes laid out as Dapr's Go store lays them out
//! (field `data` holds the value, field `version` the integer ETag), so data written by
//! either runtime reads back in the other. Every conditional write is one Lua script, so
//! checks and writes are atomic on the server.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::{RedisError, Script, Value};

use components_core::state::{
    Concurrency, DeleteRequest, Features, GetRequest, Item, Operation, SetRequest, StateError,
    StateStore, Ttl,
};
use components_core::{Component, ComponentError, Properties};

use crate::connection::Server;

const MISMATCH: &str = "ETAG_MISMATCH";

// Keys that exist but are not hashes (values written by something other than a state
// store) count as existing without a version: a conditional write refuses them instead of
// deleting them, and only an unconditional write replaces them.

/// Set: ARGV = etag ("" = none), data, first-write ("1"/"0"), ttl (seconds > 0 = expire,
/// -1 = persist, 0 = leave any expiry as it is).
const SET_LUA: &str = r#"
local ok, cur = pcall(redis.call, "HGET", KEYS[1], "version")
local exists = (not ok) or (cur ~= false)
if ARGV[1] ~= "" then
  if (not ok) or (not cur) or cur ~= ARGV[1] then return redis.error_reply("ETAG_MISMATCH") end
elseif ARGV[3] == "1" and exists then
  return redis.error_reply("ETAG_MISMATCH")
end
if not ok then redis.call("DEL", KEYS[1]) end
redis.call("HSET", KEYS[1], "data", ARGV[2])
local v = redis.call("HINCRBY", KEYS[1], "version", 1)
local ttl = tonumber(ARGV[4])
if ttl > 0 then redis.call("EXPIRE", KEYS[1], ttl) elseif ttl < 0 then redis.call("PERSIST", KEYS[1]) end
return v
"#;

/// Delete: ARGV = etag ("" = none).
const DELETE_LUA: &str = r#"
if ARGV[1] ~= "" then
  local ok, cur = pcall(redis.call, "HGET", KEYS[1], "version")
  if (not ok) or (not cur) or cur ~= ARGV[1] then return redis.error_reply("ETAG_MISMATCH") end
end
return redis.call("DEL", KEYS[1])
"#;

/// Transaction: KEYS = the keys in operation order; ARGV = five values per operation:
/// kind ("s"/"d"), etag, data, first-write, ttl. Every check runs against a staged view
/// before anything is written, so a failing operation leaves all keys untouched.
const TRANSACT_LUA: &str = r#"
local staged = {}
local function state(k)
  if staged[k] ~= nil then return staged[k] end
  local ok, cur = pcall(redis.call, "HGET", k, "version")
  if not ok then return "foreign" end
  return cur
end
for i, k in ipairs(KEYS) do
  local base = (i - 1) * 5
  local kind, etag, first = ARGV[base + 1], ARGV[base + 2], ARGV[base + 4]
  local cur = state(k)
  if etag ~= "" then
    if (not cur) or cur == "foreign" or cur ~= etag then return redis.error_reply("ETAG_MISMATCH") end
  elseif kind == "s" and first == "1" and cur then
    return redis.error_reply("ETAG_MISMATCH")
  end
  if kind == "s" then staged[k] = tostring((tonumber(cur) or 0) + 1) else staged[k] = false end
end
for i, k in ipairs(KEYS) do
  local base = (i - 1) * 5
  if ARGV[base + 1] == "s" then
    local ok = pcall(redis.call, "HGET", k, "version")
    if not ok then redis.call("DEL", k) end
    redis.call("HSET", k, "data", ARGV[base + 3])
    redis.call("HINCRBY", k, "version", 1)
    local ttl = tonumber(ARGV[base + 5])
    if ttl > 0 then redis.call("EXPIRE", k, ttl) elseif ttl < 0 then redis.call("PERSIST", k) end
  else
    redis.call("DEL", k)
  end
end
return #KEYS
"#;

pub struct RedisStore {
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
    default_ttl: Option<Duration>,
}

struct Scripts {
    set: Script,
    delete: Script,
    transact: Script,
}

impl RedisStore {
    /// Connects with Dapr's Redis connection metadata (`redisHost`, ...; see
    /// `connection::Server`); `ttlInSeconds` is the default TTL for writes without one.
    pub async fn connect(props: &Properties) -> Result<Self, ComponentError> {
        let conn = Server::from_properties(props)?.manager().await?;
        let default_ttl = match props.parse::<i64>("ttlInSeconds")? {
            Some(s) if s > 0 => Some(Duration::from_secs(s as u64)),
            _ => None,
        };
        Ok(Self {
            conn,
            scripts: Arc::new(Scripts {
                set: Script::new(SET_LUA),
                delete: Script::new(DELETE_LUA),
                transact: Script::new(TRANSACT_LUA),
            }),
            default_ttl,
        })
    }

    /// The script's TTL argument: seconds to expire after, -1 to persist, 0 to leave the
    /// key's expiry alone (an overwrite without `ttlInSeconds` keeps it, as in Dapr).
    fn ttl_arg(&self, ttl: Ttl) -> i64 {
        let secs = |d: Duration| i64::try_from(d.as_secs().max(1)).unwrap_or(i64::MAX);
        match (ttl, self.default_ttl) {
            (Ttl::After(d), _) | (Ttl::Unspecified, Some(d)) => secs(d),
            (Ttl::Never, _) => -1,
            (Ttl::Unspecified, None) => 0,
        }
    }
}

/// Redis versions are integers; anything else can never match and is refused as invalid.
fn check_etag(etag: Option<&str>) -> Result<&str, StateError> {
    match etag {
        None => Ok(""),
        Some(e) if e.parse::<u64>().is_ok() => Ok(e),
        Some(e) => Err(StateError::EtagInvalid(e.to_string())),
    }
}

fn map_err(key: &str, err: RedisError) -> StateError {
    if err.to_string().contains(MISMATCH) {
        StateError::EtagMismatch(format!("failed to set key {key}"))
    } else {
        StateError::backend(err)
    }
}

/// Takes the reply's buffer as it is, without copying the value.
fn into_bytes(v: Value) -> Option<Bytes> {
    match v {
        Value::BulkString(b) => Some(Bytes::from(b)),
        Value::SimpleString(s) => Some(Bytes::from(s)),
        _ => None,
    }
}

fn first_write(c: Concurrency) -> &'static str {
    if c == Concurrency::FirstWrite {
        "1"
    } else {
        "0"
    }
}

/// The connection manager closes its connection when the store is dropped.
impl Component for RedisStore {}

#[async_trait]
impl StateStore for RedisStore {
    fn features(&self) -> Features {
        Features {
            etag: true,
            transactional: true,
            ttl: true,
            query: false,
        }
    }

    /// One `HMGET` per read. Like Dapr's Redis store, no `ttlExpireTime` is reported:
    /// that would cost a second command on every read.
    async fn get(&self, req: &GetRequest) -> Result<Option<Item>, StateError> {
        let mut conn = self.conn.clone();
        let reply: Result<Vec<Value>, RedisError> = redis::cmd("HMGET")
            .arg(&req.key)
            .arg("data")
            .arg("version")
            .query_async(&mut conn)
            .await;
        let fields = match reply {
            Ok(r) => r,
            // A plain string written by something else: readable, with no ETag, as Dapr's
            // store falls back to GET.
            Err(e) if e.to_string().contains("WRONGTYPE") => {
                let data: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&req.key)
                    .query_async(&mut conn)
                    .await
                    .map_err(StateError::backend)?;
                return Ok(data.map(|d| Item {
                    data: Bytes::from(d),
                    etag: None,
                    expires_at: None,
                }));
            }
            Err(e) => return Err(StateError::backend(e)),
        };
        let mut fields = fields.into_iter();
        let Some(data) = fields.next().and_then(into_bytes) else {
            return Ok(None);
        };
        let etag = fields
            .next()
            .and_then(into_bytes)
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok(Some(Item {
            data,
            etag,
            expires_at: None,
        }))
    }

    async fn set(&self, req: &SetRequest) -> Result<(), StateError> {
        let etag = check_etag(req.etag.as_deref())?;
        let mut conn = self.conn.clone();
        let _: i64 = self
            .scripts
            .set
            .key(&req.key)
            .arg(etag)
            .arg(req.value.as_ref())
            .arg(first_write(req.concurrency))
            .arg(self.ttl_arg(req.ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| map_err(&req.key, e))?;
        Ok(())
    }

    async fn delete(&self, req: &DeleteRequest) -> Result<(), StateError> {
        let etag = check_etag(req.etag.as_deref())?;
        let mut conn = self.conn.clone();
        let _: i64 = self
            .scripts
            .delete
            .key(&req.key)
            .arg(etag)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| map_err(&req.key, e))?;
        Ok(())
    }

    async fn transact(&self, ops: &[Operation]) -> Result<(), StateError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut invocation = self.scripts.transact.prepare_invoke();
        for op in ops {
            match op {
                Operation::Set(r) => {
                    invocation
                        .key(&r.key)
                        .arg("s")
                        .arg(check_etag(r.etag.as_deref())?)
                        .arg(r.value.as_ref())
                        .arg(first_write(r.concurrency))
                        .arg(self.ttl_arg(r.ttl));
                }
                Operation::Delete(r) => {
                    invocation
                        .key(&r.key)
                        .arg("d")
                        .arg(check_etag(r.etag.as_deref())?)
                        .arg("")
                        .arg("0")
                        .arg(0);
                }
            }
        }
        let mut conn = self.conn.clone();
        let _: i64 = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| map_err("in transaction", e))?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(StateError::backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the Redis server the test script starts; never skipped.
    pub(crate) fn test_props() -> Properties {
        let port = std::env::var("REDIS_PORT")
            .expect("REDIS_PORT must point at a Redis server on 127.0.0.1 (run scripts/test.sh)");
        Properties::new([("redisHost", format!("127.0.0.1:{port}"))])
    }

    #[tokio::test]
    async fn passes_conformance() {
        let store = RedisStore::connect(&test_props())
            .await
            .expect("connect to redis");
        components_core::testing::state::run(&store).await;
    }

    #[tokio::test]
    async fn stores_values_in_daprs_hash_layout() {
        let store = RedisStore::connect(&test_props())
            .await
            .expect("connect to redis");
        let key = format!("layout-{}", uuid::Uuid::new_v4().simple());
        let req = SetRequest {
            key: key.clone(),
            value: Bytes::from_static(b"hello"),
            ..Default::default()
        };
        store.set(&req).await.expect("set");
        store.set(&req).await.expect("set again");
        let mut conn = store.conn.clone();
        let (data, version): (String, String) = redis::cmd("HMGET")
            .arg(&key)
            .arg("data")
            .arg("version")
            .query_async(&mut conn)
            .await
            .expect("hmget");
        assert_eq!((data.as_str(), version.as_str()), ("hello", "2"));
    }
}
