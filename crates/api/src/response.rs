//! What a command answers: status, optional `ETag` and `Location`, JSON body. Storable, so that an
//! idempotent replay sends exactly the same answer.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cpq_core::Error;
use serde_json::{json, Value};

pub const REPLAYED: &str = "idempotent-replayed";

#[derive(Debug, Clone, PartialEq)]
pub struct CommandResponse {
    pub status: StatusCode,
    pub etag: Option<i64>,
    pub location: Option<String>,
    pub body: Value,
    pub replayed: bool,
}

impl CommandResponse {
    pub fn ok(body: Value) -> CommandResponse {
        CommandResponse {
            status: StatusCode::OK,
            etag: None,
            location: None,
            body,
            replayed: false,
        }
    }

    pub fn created(location: String, body: Value) -> CommandResponse {
        CommandResponse {
            status: StatusCode::CREATED,
            location: Some(location),
            ..CommandResponse::ok(body)
        }
    }

    /// This answer as `201 Created` at `location`.
    pub fn as_created(mut self, location: String) -> CommandResponse {
        self.status = StatusCode::CREATED;
        self.location = Some(location);
        self
    }

    pub fn with_etag(mut self, version: i64) -> CommandResponse {
        self.etag = Some(version);
        self
    }

    pub(crate) fn to_stored(&self) -> (i16, Value, Value) {
        (
            self.status.as_u16() as i16,
            json!({ "etag": self.etag, "location": self.location }),
            self.body.clone(),
        )
    }

    pub(crate) fn restore(
        status: i16,
        headers: Option<Value>,
        body: Option<Value>,
    ) -> Result<CommandResponse, Error> {
        let status = u16::try_from(status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| {
                Error::internal(format!("stored idempotent status {status} is invalid"))
            })?;
        let headers = headers.unwrap_or(Value::Null);
        Ok(CommandResponse {
            status,
            etag: headers.get("etag").and_then(Value::as_i64),
            location: headers
                .get("location")
                .and_then(Value::as_str)
                .map(str::to_owned),
            body: body.unwrap_or(Value::Null),
            replayed: true,
        })
    }
}

impl IntoResponse for CommandResponse {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        let headers = response.headers_mut();
        if let Some(v) = self.etag {
            headers.insert(header::ETAG, crate::etag::header(v));
        }
        if let Some(loc) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, loc);
        }
        if self.replayed {
            headers.insert(REPLAYED, HeaderValue::from_static("true"));
        }
        response
    }
}
