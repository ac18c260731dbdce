//! The admin API's query-string extractor: axum's `Query`, refused as a problem document whose
//! `field` names the parameter at fault (`limit`, `sort`, or an unknown one).

use axum::extract::{FromRequestParts, Query as AxumQuery};
use axum::http::request::Parts;
use axum::http::StatusCode;

use super::ApiError;

/// A query string read into `T`.
pub(super) struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match AxumQuery::<T>::from_request_parts(parts, state).await {
            Ok(AxumQuery(value)) => Ok(Query(value)),
            Err(rejection) => {
                let text = rejection.body_text();
                let detail = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text).to_string();
                let error = ApiError::new(StatusCode::BAD_REQUEST, format!("bad query string: {detail}"));
                Err(match field_of(&detail) {
                    Some(field) => error.at(&field),
                    None => error,
                })
            }
        }
    }
}

/// The parameter a deserialization message is about: its leading path (`limit: invalid digit`)
/// or the name serde quotes (``unknown field `foo` ``).
fn field_of(detail: &str) -> Option<String> {
    if let Some(rest) = detail.strip_prefix("unknown field `") {
        return rest.split('`').next().map(String::from);
    }
    let (path, _) = detail.split_once(": ")?;
    let simple = !path.is_empty() && path.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    simple.then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[test]
    fn names_the_parameter_at_fault() {
        assert_eq!(field_of("limit: invalid digit found in string").as_deref(), Some("limit"));
        assert_eq!(field_of("unknown field `colour`, expected one of `vendor`").as_deref(), Some("colour"));
        assert_eq!(field_of("something else").as_deref(), None);
    }
}
