use crate::support::TestApp;
use cpq_core::Role;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

pub const SALES: &[Role] = &[Role::Sales];

pub fn account(name: &str, external_ref: &str) -> Value {
    json!({ "name": name, "external_ref": external_ref, "segment": "enterprise", "market": "DE", "currency": "EUR" })
}

pub trait Authed {
    fn bearer_for(self, token: &str) -> RequestBuilder;
}

impl Authed for RequestBuilder {
    fn bearer_for(self, token: &str) -> RequestBuilder {
        self.header("Authorization", format!("Bearer {token}"))
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn from(resp: Response) -> Answer {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 9457 problem of the given status and type slug.
    pub fn assert_problem(&self, status: u16, slug: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.body
        );
        assert_eq!(
            self.body["type"],
            format!("urn:cpq:problem:{slug}"),
            "body: {}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["title"].is_string() && self.body["detail"].is_string(),
            "{}",
            self.body
        );
    }

    /// The field names of a problem's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub async fn post(
    app: &TestApp,
    token: &str,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> Answer {
    let mut req = app.client.post(app.url(path)).bearer_for(token).json(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    Answer::from(req.send().await.unwrap()).await
}

/// A POST with a body of any content type, sent as is.
pub async fn post_raw(
    app: &TestApp,
    token: &str,
    path: &str,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> Answer {
    let req = app
        .client
        .post(app.url(path))
        .bearer_for(token)
        .header("content-type", content_type)
        .body(body.into());
    Answer::from(req.send().await.unwrap()).await
}

pub async fn get(app: &TestApp, token: &str, path: &str) -> Answer {
    Answer::from(
        app.client
            .get(app.url(path))
            .bearer_for(token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

pub async fn create_account(app: &TestApp, token: &str, name: &str, external_ref: &str) -> Answer {
    let a = post(
        app,
        token,
        "/v1/customer-accounts",
        &account(name, external_ref),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a
}

/// Counts rows as the schema owner (which row-level security does not restrict).
pub async fn count(app: &TestApp, sql: &str) -> i64 {
    let pool = app.db.owner_pool().await;
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

/// Deploys a BPMN document through the API as `token`; `query` is appended to the path (for
/// example `?allow_unsupported_job_types=true`).
/// `POST /v1/deployments{query}`: the files (name, content) as `resources` parts of one
/// multipart body, as Camunda's clients send them.
pub async fn deploy_together(
    app: &TestApp,
    token: &str,
    query: &str,
    files: &[(&str, &str)],
) -> Answer {
    let mut form = reqwest::multipart::Form::new();
    for (name, xml) in files {
        form = form.part(
            "resources",
            reqwest::multipart::Part::text(xml.to_string())
                .file_name(name.to_string())
                .mime_str("application/octet-stream")
                .unwrap(),
        );
    }
    Answer::from(
        app.client
            .post(app.url(&format!("/v1/deployments{query}")))
            .bearer_for(token)
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

pub async fn deploy_bpmn(app: &TestApp, token: &str, query: &str, xml: &str) -> Answer {
    Answer::from(
        app.client
            .post(app.url(&format!("/v1/process-definitions{query}")))
            .bearer_for(token)
            .header("content-type", "application/xml")
            .body(xml.to_owned())
            .send()
            .await
            .unwrap(),
    )
    .await
}
