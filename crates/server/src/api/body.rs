//! The admin API's JSON body extractor: axum's `Json`, with a refusal that quotes no value.
//!
//! serde's messages name what they did not expect, value included (`invalid type: integer
//! `12345`, expected a string`): a password sent as a JSON number would come back in the error,
//! and from there into terminals and client logs. The key path and the expected type stay, and
//! the member at fault becomes the problem document's `field`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};

use super::ApiError;

/// A JSON request body of type `T`.
pub(super) struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => {
                let error = ApiError::new(rejection.status(), without_values(&rejection.body_text()));
                Err(match field_at_fault(&rejection) {
                    Some(field) => error.at(&field),
                    None => error,
                })
            }
        }
    }
}

/// The member serde refused: the JSON path axum's extractor records (`settings.line.1.port`),
/// or, at the top level, the field serde names as missing or unknown.
fn field_at_fault(rejection: &JsonRejection) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if let Some(e) = e.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>() {
            let path = e.path().to_string();
            if path != "." {
                return Some(path);
            }
            let message = e.inner().to_string();
            let named = ["missing field `", "unknown field `"].iter().find_map(|m| message.split_once(m));
            return named.and_then(|(_, rest)| rest.split_once('`')).map(|(field, _)| field.to_string());
        }
        source = e.source();
    }
    None
}

/// serde's descriptions of an unexpected value, each followed by the value in these quotes.
const VALUE_MARKERS: &[(&str, char)] =
    &[("integer `", '`'), ("floating point `", '`'), ("boolean `", '`'), ("character `", '`'), ("string \"", '"')];

/// `text` with every value serde quotes replaced by `…`.
///
/// ```ignore
/// assert_eq!(without_values("a: invalid type: integer `12345`, expected a string"),
///            "a: invalid type: integer `…`, expected a string");
/// ```
pub(super) fn without_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, marker, close)) =
        VALUE_MARKERS.iter().filter_map(|(m, c)| rest.find(m).map(|i| (i, *m, *c))).min_by_key(|(i, _, _)| *i)
    {
        out.push_str(&rest[..at + marker.len()]);
        let value = &rest[at + marker.len()..];
        // A quoted string is Debug-escaped: skip escaped quotes.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in value.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                c if c == close && !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        out.push('…');
        match end {
            Some(i) => rest = &value[i..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_dropped_and_the_rest_kept() {
        assert_eq!(
            without_values("Failed: line.1.password: invalid type: integer `12345`, expected a string at line 1"),
            "Failed: line.1.password: invalid type: integer `…`, expected a string at line 1"
        );
        assert_eq!(
            without_values(r#"x: invalid value: string "a\"b`c", expected y; z: boolean `true`"#),
            r#"x: invalid value: string "…", expected y; z: boolean `…`"#
        );
        assert_eq!(without_values("unknown field `colour`"), "unknown field `colour`");
        assert_eq!(without_values("integer `12"), "integer `…");
    }
}
