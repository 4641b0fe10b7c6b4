//! Cursor pagination: opaque cursors, a stable sort key, a bounded page size.
//!
//! A cursor is base64url of `{"after": <last sort key>, "query": <fingerprint of the filters>}`.
//! It is bound to the filters it was issued for, so that a client cannot page one query with
//! another's cursor and silently skip rows.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cpq_core::{Error, FieldError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct CursorBody<K> {
    after: K,
    query: String,
}

/// Short fingerprint of a query's filters (any serializable description of them).
pub fn query_fingerprint<F: Serialize>(filters: &F) -> String {
    let text = serde_json::to_string(filters).unwrap_or_default();
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

pub fn encode_cursor<K: Serialize>(after: &K, fingerprint: &str) -> String {
    let body = CursorBody {
        after,
        query: fingerprint.to_owned(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default())
}

fn bad_cursor(detail: &str) -> Error {
    Error::Malformed {
        detail: detail.to_owned(),
        errors: vec![FieldError::new("cursor", "invalid-cursor", detail)],
    }
}

pub fn decode_cursor<K: for<'de> Deserialize<'de>>(
    cursor: &str,
    fingerprint: &str,
) -> Result<K, Error> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad_cursor("the cursor is not one this API issued"))?;
    let body: CursorBody<K> = serde_json::from_slice(&bytes)
        .map_err(|_| bad_cursor("the cursor is not one this API issued"))?;
    if body.query != fingerprint {
        return Err(bad_cursor(
            "the cursor belongs to a query with other filters; start again without a cursor",
        ));
    }
    Ok(body.after)
}

/// Validates the requested page size against the configured maximum.
pub fn page_size(requested: Option<u32>, default: u32, max: u32) -> Result<u32, Error> {
    match requested {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(Error::Malformed {
            detail: format!("limit {n} is outside 1..={max}"),
            errors: vec![FieldError::new(
                "limit",
                "out-of-range",
                format!("limit must be between 1 and {max}"),
            )],
        }),
    }
}

/// A list request's paging: the page size (the configured default, or the caller's `limit`
/// within the configured maximum), the fingerprint of the filters that select its rows, and the
/// sort key it continues after (from a cursor issued for the same filters). Every keyset-paged
/// list reads its request through this and builds its answer with [`PageRequest::page`].
#[derive(Debug)]
pub struct PageRequest<K> {
    pub limit: u32,
    pub fingerprint: String,
    pub after: Option<K>,
}

impl<K: Serialize + for<'de> Deserialize<'de>> PageRequest<K> {
    /// `filters`: everything that selects the rows (not the limit or the cursor).
    pub fn new<F: Serialize>(
        http: &cpq_config::HttpConfig,
        limit: Option<u32>,
        cursor: Option<&str>,
        filters: &F,
    ) -> Result<Self, Error> {
        let limit = page_size(limit, http.default_page_size, http.max_page_size)?;
        let fingerprint = query_fingerprint(filters);
        let after = cursor
            .map(|c| decode_cursor::<K>(c, &fingerprint))
            .transpose()?;
        Ok(PageRequest {
            limit,
            fingerprint,
            after,
        })
    }

    /// Rows to fetch: one more than the page, which only says that another page follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// The page of up to [`PageRequest::fetch`] `rows`, each keyed by `key` and shown as `view`.
    pub fn page<R, T>(
        &self,
        rows: Vec<R>,
        key: impl Fn(&R) -> K,
        view: impl Fn(R) -> T,
    ) -> Page<T> {
        page(rows, self.limit, &self.fingerprint, key, view)
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Builds a page from up to `limit + 1` fetched rows: the extra row only says "there is more".
pub fn page<R, T, K: Serialize>(
    mut rows: Vec<R>,
    limit: u32,
    fingerprint: &str,
    key: impl Fn(&R) -> K,
    view: impl Fn(R) -> T,
) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| encode_cursor(&key(r), fingerprint))
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(view).collect(),
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn cursors_round_trip_for_their_own_query(after in any::<u128>(), fp in "[0-9a-f]{16}") {
            let c = encode_cursor(&after.to_string(), &fp);
            prop_assert_eq!(decode_cursor::<String>(&c, &fp).unwrap(), after.to_string());
        }

        #[test]
        fn cursors_are_refused_for_another_query(after in any::<u64>(), a in "[0-9a-f]{16}", b in "[0-9a-f]{16}") {
            prop_assume!(a != b);
            let c = encode_cursor(&after, &a);
            prop_assert!(decode_cursor::<u64>(&c, &b).is_err());
        }

        #[test]
        fn paging_never_loses_or_repeats_rows(n in 0usize..60, limit in 1u32..10) {
            let rows: Vec<usize> = (0..n).collect();
            let mut seen = Vec::new();
            let mut after: Option<usize> = None;
            loop {
                let fetched: Vec<usize> = rows.iter().copied().filter(|r| after.is_none_or(|a| *r > a)).take(limit as usize + 1).collect();
                let p = page(fetched, limit, "q", |r| *r, |r| r);
                seen.extend(p.items.iter().copied());
                match p.next_cursor {
                    Some(c) => after = Some(decode_cursor(&c, "q").unwrap()),
                    None => break,
                }
            }
            prop_assert_eq!(seen, rows);
        }
    }

    #[test]
    fn page_size_is_bounded() {
        assert_eq!(page_size(None, 50, 200).unwrap(), 50);
        assert_eq!(page_size(Some(200), 50, 200).unwrap(), 200);
        assert!(page_size(Some(201), 50, 200).is_err());
        assert!(page_size(Some(0), 50, 200).is_err());
    }
}
