//! Query parameters, parsed by hand so that a malformed one gets the spec's JSON error naming it
//! (axum's extractors answer plain text).

use axum::extract::RawQuery;

use super::ApiError;

pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(RawQuery(q): RawQuery) -> Result<Params, ApiError> {
        let q = q.unwrap_or_default();
        serde_urlencoded::from_str::<Vec<(String, String)>>(&q)
            .map(Params)
            .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A non-empty string parameter.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("false" | "0" | "") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(_) => Err(ApiError::bad_request(format!(
                "query parameter '{key}': expected true or false"
            ))),
        }
    }

    pub fn integer(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("query parameter '{key}': expected an integer"))
            }),
        }
    }
}
