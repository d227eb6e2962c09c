//! ListObjectsV2 and ListObjects (V1, which the AWS CLI's log validator uses): keys in order under a
//! prefix, rolled up into common prefixes at a delimiter, a page at a time.

use std::{collections::BTreeMap, fmt::Write};

use base64::Engine;

use super::{
    error::S3Error,
    object::Object,
    request::S3Request,
    xml::{NAMESPACE, element, last_modified},
};
use crate::wire::escape;

/// S3 answers at most 1000 keys a page, whatever max-keys asks.
const MAX_KEYS: usize = 1000;

/// One entry of a listing: an object, or a common prefix standing for all keys under it.
enum Item<'a> {
    Object(&'a str, &'a Object),
    Prefix(String),
}

impl Item<'_> {
    fn name(&self) -> &str {
        match self {
            Item::Object(key, _) => key,
            Item::Prefix(prefix) => prefix,
        }
    }
}

/// The entries after `after` under `prefix`, at most `max`; and whether more remain.
fn page<'a>(
    objects: &'a BTreeMap<String, Object>,
    prefix: &str,
    delimiter: Option<&str>,
    after: &str,
    max: usize,
) -> (Vec<Item<'a>>, bool) {
    let mut items: Vec<Item> = Vec::new();
    let start = if after > prefix { after } else { prefix };
    for (key, object) in
        objects.range::<str, _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
    {
        if !key.starts_with(prefix) {
            break;
        }
        let rolled = delimiter.filter(|d| !d.is_empty()).and_then(|d| {
            let rest = &key[prefix.len()..];
            rest.find(d)
                .map(|at| format!("{prefix}{}", &rest[..at + d.len()]))
        });
        let item = match rolled {
            Some(common) => Item::Prefix(common),
            None => Item::Object(key, object),
        };
        // A key under a common prefix already listed (or at or before the marker) is skipped.
        if item.name() <= after || items.last().is_some_and(|last| last.name() == item.name()) {
            continue;
        }
        if items.len() == max {
            return (items, true);
        }
        items.push(item);
    }
    (items, false)
}

fn max_keys(request: &S3Request) -> Result<usize, S3Error> {
    match request.param("max-keys") {
        None => Ok(MAX_KEYS),
        Some(v) => v.parse::<usize>().map(|n| n.min(MAX_KEYS)).map_err(|_| {
            S3Error::new(
                "InvalidArgument",
                400,
                "Provided max-keys not an integer or within integer range",
            )
        }),
    }
}

fn token_of(name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name)
}

fn name_of_token(token: &str) -> Result<String, S3Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(|| {
            S3Error::new(
                "InvalidArgument",
                400,
                "The continuation token provided is incorrect",
            )
        })
}

/// Keys as `encoding-type=url` asks: percent-encoded (S3 leaves `/` as it is).
fn encoder(request: &S3Request) -> impl Fn(&str) -> String {
    let url = request.param("encoding-type") == Some("url");
    move |text: &str| {
        if !url {
            return escape(text);
        }
        let mut out = String::with_capacity(text.len());
        for b in text.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                out.push(b as char);
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
        out
    }
}

fn entries(out: &mut String, items: &[Item], encode: &impl Fn(&str) -> String) {
    for item in items {
        match item {
            Item::Object(key, object) => {
                let _ = write!(
                    out,
                    "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                    encode(key),
                    last_modified(object.last_modified),
                    escape(&object.etag),
                    object.body.len()
                );
            }
            Item::Prefix(prefix) => {
                let _ = write!(
                    out,
                    "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                    encode(prefix)
                );
            }
        }
    }
}

/// Which listing: ListObjectsV2 (`list-type=2`: continuation tokens, start-after) or ListObjects
/// (V1: markers, NextMarker when a delimiter is given, as S3).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The listing `request` asks for, as S3's `ListBucketResult`.
pub fn list(
    version: Version,
    bucket: &str,
    objects: &BTreeMap<String, Object>,
    request: &S3Request,
) -> Result<String, S3Error> {
    let prefix = request.param("prefix").unwrap_or_default();
    let delimiter = request.param("delimiter");
    let max = max_keys(request)?;
    let (after, start_after, token) = match version {
        Version::V1 => (
            request.param("marker").unwrap_or_default().to_owned(),
            "",
            None,
        ),
        Version::V2 => {
            let token = request.param("continuation-token");
            let resumed = token.map(name_of_token).transpose()?;
            let start_after = request.param("start-after").unwrap_or_default();
            let after = resumed.as_deref().unwrap_or(start_after).max(start_after);
            (after.to_owned(), start_after, token)
        }
    };
    let (items, truncated) = page(objects, prefix, delimiter, &after, max);
    let encode = encoder(request);
    let mut out = format!("<ListBucketResult xmlns=\"{NAMESPACE}\">");
    out += &element("Name", &escape(bucket));
    out += &element("Prefix", &encode(prefix));
    if version == Version::V1 {
        out += &element("Marker", &encode(&after));
    }
    if let Some(d) = delimiter {
        out += &element("Delimiter", &encode(d));
    }
    out += &element("MaxKeys", &max.to_string());
    if version == Version::V2 {
        out += &element("KeyCount", &items.len().to_string());
    }
    out += &element("IsTruncated", &truncated.to_string());
    if let Some(token) = token {
        out += &element("ContinuationToken", &escape(token));
    }
    if truncated && let Some(last) = items.last() {
        match version {
            Version::V2 => out += &element("NextContinuationToken", &token_of(last.name())),
            Version::V1 if delimiter.is_some() => {
                out += &element("NextMarker", &encode(last.name()))
            }
            Version::V1 => {}
        }
    }
    if !start_after.is_empty() {
        out += &element("StartAfter", &encode(start_after));
    }
    if request.param("encoding-type") == Some("url") {
        out += &element("EncodingType", "url");
    }
    entries(&mut out, &items, &encode);
    out += "</ListBucketResult>";
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::DateTime;

    fn objects(keys: &[&str]) -> BTreeMap<String, Object> {
        keys.iter()
            .map(|k| {
                let o = Object::new(
                    k.as_bytes().to_vec(),
                    BTreeMap::new(),
                    None,
                    DateTime::from_secs(1),
                );
                ((*k).to_owned(), o)
            })
            .collect()
    }

    fn names(items: &[Item]) -> Vec<String> {
        items.iter().map(|i| i.name().to_owned()).collect()
    }

    #[test]
    fn prefixes_delimiters_and_pages() {
        let o = objects(&["a/1", "a/2", "b/1/x", "b/1/y", "b/2", "c"]);
        let (items, more) = page(&o, "", Some("/"), "", 1000);
        assert_eq!(names(&items), ["a/", "b/", "c"]);
        assert!(!more);
        let (items, _) = page(&o, "b/", Some("/"), "", 1000);
        assert_eq!(names(&items), ["b/1/", "b/2"]);
        // Page by page, resuming after the last entry, common prefix or key.
        let mut after = String::new();
        let mut all = Vec::new();
        loop {
            let (items, more) = page(&o, "", Some("/"), &after, 1);
            all.extend(names(&items));
            if !more {
                break;
            }
            after = items.last().unwrap().name().to_owned();
        }
        assert_eq!(all, ["a/", "b/", "c"]);
        let (items, more) = page(&o, "", None, "a/2", 2);
        assert_eq!(names(&items), ["b/1/x", "b/1/y"]);
        assert!(more);
        let (items, more) = page(&o, "a/", None, "", 0);
        assert!(items.is_empty() && more);
    }
}
