//! Translation of the state query language into SQL over the jsonb `value` column. User
//! values are always bound parameters, never SQL text.

use tokio_postgres::types::ToSql;

use components_core::state::query::Filter;

/// Bound parameters of a translated query; user values never enter the SQL text.
#[derive(Default)]
pub struct SqlParams {
    texts: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl SqlParams {
    pub fn push_text(&mut self, v: String) -> String {
        self.texts.push(Box::new(v));
        format!("${}::text", self.texts.len())
    }

    pub fn push_path(&mut self, path: &str) -> String {
        let parts: Vec<String> = path.split('.').map(str::to_string).collect();
        self.texts.push(Box::new(parts));
        format!("${}::text[]", self.texts.len())
    }

    fn push_json(&mut self, v: &serde_json::Value) -> String {
        self.texts.push(Box::new(v.to_string()));
        format!("${}::text::jsonb", self.texts.len())
    }

    fn compare(&mut self, path: &str, v: &serde_json::Value, op: &str) -> String {
        let p = self.push_path(path);
        let j = self.push_json(v);
        format!("(jsonb_typeof(value #> {p}) = jsonb_typeof({j}) AND value #> {p} {op} {j})")
    }

    pub fn filter(&mut self, f: &Filter) -> String {
        match f {
            Filter::Eq(p, v) => {
                let (p, j) = (self.push_path(p), self.push_json(v));
                format!("(value #> {p} = {j})")
            }
            Filter::Neq(p, v) => {
                let (p, j) = (self.push_path(p), self.push_json(v));
                format!("(value #> {p} IS DISTINCT FROM {j})")
            }
            Filter::Gt(p, v) => self.compare(p, v, ">"),
            Filter::Gte(p, v) => self.compare(p, v, ">="),
            Filter::Lt(p, v) => self.compare(p, v, "<"),
            Filter::Lte(p, v) => self.compare(p, v, "<="),
            Filter::In(p, vs) if vs.is_empty() => {
                let _ = p;
                "FALSE".to_string()
            }
            Filter::In(p, vs) => {
                let parts: Vec<String> = vs
                    .iter()
                    .map(|v| self.filter(&Filter::Eq(p.clone(), v.clone())))
                    .collect();
                format!("({})", parts.join(" OR "))
            }
            Filter::And(fs) => {
                let parts: Vec<String> = fs.iter().map(|f| self.filter(f)).collect();
                format!("({})", parts.join(" AND "))
            }
            Filter::Or(fs) => {
                let parts: Vec<String> = fs.iter().map(|f| self.filter(f)).collect();
                format!("({})", parts.join(" OR "))
            }
        }
    }

    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.texts
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}
