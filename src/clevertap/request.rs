//! The CleverTap request format, built in this one place: the bodies of the two calls
//! (`{"d":[...]}` for uploads, `{"identity":[...]}` for deletes), their paths and limits, the
//! headers, and the redacted view that `transform` and `invoke --dry-run` print. Delivery sends
//! what the two commands show, so they cannot drift (docs/clevertap-api.md).

use crate::clevertap::endpoint::{DELETE_PATH, UPLOAD_PATH};
use crate::json::writer::write_str;
use bytes::Bytes;

/// Header carrying the CleverTap account id (docs/clevertap-api.md, "Endpoints and regions").
pub const HEADER_ACCOUNT_ID: &str = "X-CleverTap-Account-Id";
/// Header carrying the passcode; never shown: the views print [`REDACTED`] instead.
pub const HEADER_PASSCODE: &str = "X-CleverTap-Passcode";
/// What a view prints in place of the passcode.
pub const REDACTED: &str = "<redacted>";
/// CleverTap's limit of records per upload call (docs/clevertap-api.md, "Limits").
pub const MAX_RECORDS_PER_UPLOAD: usize = 1000;
/// CleverTap's limit of identities per delete call (docs/clevertap-api.md, "Limits").
pub const MAX_IDENTITIES_PER_DELETE: usize = 100;

/// The two calls this function makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `POST /1/upload`: profiles, events and device tokens.
    Upload,
    /// `POST /1/delete/profiles.json`: delete profiles by identity.
    Delete,
}

impl Call {
    pub const fn path(self) -> &'static str {
        match self {
            Call::Upload => UPLOAD_PATH,
            Call::Delete => DELETE_PATH,
        }
    }

    /// The most items one request of this call may hold.
    pub const fn max_items(self) -> usize {
        match self {
            Call::Upload => MAX_RECORDS_PER_UPLOAD,
            Call::Delete => MAX_IDENTITIES_PER_DELETE,
        }
    }

    const fn body_prefix(self) -> &'static [u8] {
        match self {
            Call::Upload => br#"{"d":["#,
            Call::Delete => br#"{"identity":["#,
        }
    }
}

/// Appends the call's body to `out`: the items' JSON texts (records, or quoted identities)
/// joined by `,`, without re-parsing them.
pub fn write_body<'a>(call: Call, items: impl IntoIterator<Item = &'a str>, out: &mut Vec<u8>) {
    out.extend_from_slice(call.body_prefix());
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.as_bytes());
    }
    out.extend_from_slice(b"]}");
}

/// The call's body for `items`, sized once.
pub fn body<'a, I>(call: Call, items: I) -> Bytes
where
    I: IntoIterator<Item = &'a str>,
    I::IntoIter: Clone,
{
    let items = items.into_iter();
    let len = call.body_prefix().len() + 2 + items.clone().map(|i| i.len() + 1).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    write_body(call, items, &mut out);
    Bytes::from(out)
}

/// An identity as the JSON text a delete body holds.
pub fn quoted_identity(identity: &str) -> String {
    let mut out = String::with_capacity(identity.len() + 2);
    write_str(&mut out, identity);
    out
}

/// Appends the start of a request's redacted view, up to and including `"body":`; the caller
/// writes the body, then closes the object (adding members of its own first, if it likes):
/// `{"method":"POST","url":...,"headers":{"X-CleverTap-Account-Id":...,
/// "X-CleverTap-Passcode":"<redacted>","Content-Type":"application/json"},"body":`.
pub fn write_view_head(out: &mut String, url: &str, account_id: &str) {
    out.push_str("{\"method\":\"POST\",\"url\":");
    write_str(out, url);
    out.push_str(",\"headers\":{\"");
    out.push_str(HEADER_ACCOUNT_ID);
    out.push_str("\":");
    write_str(out, account_id);
    out.push_str(",\"");
    out.push_str(HEADER_PASSCODE);
    out.push_str("\":\"");
    out.push_str(REDACTED);
    out.push_str("\",\"Content-Type\":\"application/json\"},\"body\":");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn an_upload_body_joins_records_and_a_delete_body_quoted_identities() {
        let upload = body(Call::Upload, [r#"{"a":1}"#, r#"{"b":2}"#]);
        assert_eq!(&upload[..], br#"{"d":[{"a":1},{"b":2}]}"#);
        let id = quoted_identity("u-\"1");
        let delete = body(Call::Delete, [id.as_str()]);
        let parsed: Value = serde_json::from_slice(&delete).unwrap();
        assert_eq!(parsed, json!({"identity": ["u-\"1"]}));
        assert_eq!(&body(Call::Upload, [])[..], br#"{"d":[]}"#);
    }

    #[test]
    fn the_view_never_holds_the_passcode_and_is_json_once_closed() {
        let mut view = String::new();
        write_view_head(&mut view, "https://api.clevertap.com/1/upload", "ACC");
        view.push_str(r#"{"d":[]}}"#);
        let parsed: Value = serde_json::from_str(&view).unwrap();
        assert_eq!(parsed["headers"][HEADER_PASSCODE], REDACTED);
        assert_eq!(parsed["headers"][HEADER_ACCOUNT_ID], "ACC");
        assert_eq!(parsed["body"], json!({"d": []}));
    }
}
