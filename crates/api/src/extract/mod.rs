//! Request extractors that every route uses. Each refuses bad input with a problem response
//! before a handler runs, so handlers only see checked values.

mod body;
mod caller;
mod context;
mod if_match;
mod params;
mod text;

pub use body::{IdempotencyKey, JsonBody};
pub use caller::Caller;
pub use context::RequestContext;
pub use if_match::IfMatch;
pub use params::{ApiPath, ApiQuery};
