//! Issue 17's check that compound fields read through Bulk (as their components, rebuilt by the
//! connector) equal REST's: the connector's records of a read are kept as `Id` → a hash of the
//! compound values, then the org's REST `queryAll` endpoint is read for the same rows by the
//! minimal client and every row compared.
//!
//! The check runs on a read of its own, not timed: parsing each record line as JSON would take
//! CPU from the connector on a 2-core machine.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::bench_http::{self, form_encode};
use crate::bench_proc::Org;

/// The API version the minimal client asks REST for (the connector's default).
const API: &str = "/services/data/v62.0";

/// `value` written with object keys sorted and every number as a float (`45` and `45.0` are the
/// same JSON number; REST and the connector may spell a whole double either way), so equal
/// values give equal text.
pub fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&map[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Number(n) => match n.as_f64() {
            Some(f) => format!("{f:?}"),
            None => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// A hash of `fields` of a record (absent fields count as absent, not as null).
pub fn fingerprint(record: &Value, fields: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    for f in fields {
        match record.get(*f) {
            Some(v) => canonical(v).hash(&mut h),
            None => "<absent>".hash(&mut h),
        }
    }
    h.finish()
}

/// Runs `sfconnect` with `args` (a read of one stream) and keeps, per record, `Id` → the
/// fingerprint of `fields`; stderr goes to `log`.
pub fn connector_fingerprints(
    binary: &Path,
    args: &[&str],
    log: &Path,
    fields: &[&str],
) -> Result<HashMap<String, u64>> {
    let mut child = crate::bench_proc::spawn_connector(binary, args, log)?;
    let stdout = child.stdout.take().context("no stdout from sfconnect")?;
    let mut reader = BufReader::with_capacity(1 << 20, stdout);
    let mut out = HashMap::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if !line.starts_with(b"{\"type\":\"RECORD\"") {
            continue;
        }
        let message: Value = serde_json::from_slice(&line).context("a RECORD line is not JSON")?;
        let data = &message["record"]["data"];
        let id = data["Id"].as_str().context("a record without Id")?;
        out.insert(id.to_string(), fingerprint(data, fields));
    }
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "`sfconnect {}` failed ({status}); see {}",
            args.join(" "),
            log.display()
        );
    }
    Ok(out)
}

/// Reads `SELECT Id, <fields> FROM <object>` through the org's REST `queryAll` (every page, by
/// `nextRecordsUrl`) with the minimal client; returns `Id` → the fingerprint of `fields`.
pub fn rest_fingerprints(
    org: &Org,
    token: &str,
    object: &str,
    fields: &[&str],
) -> Result<HashMap<String, u64>> {
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let soql = format!("SELECT Id, {} FROM {object}", fields.join(", "));
    let mut path = Some(format!("{API}/queryAll?q={}", form_encode(&soql)));
    let mut out = HashMap::new();
    while let Some(p) = path.take() {
        let page = bench_http::send(org.authority(), "GET", &p, &auth, None)?.json()?;
        for record in page["records"]
            .as_array()
            .context("a REST page without records")?
        {
            let id = record["Id"].as_str().context("a REST record without Id")?;
            out.insert(id.to_string(), fingerprint(record, fields));
        }
        if page["done"] != true {
            path = Some(
                page["nextRecordsUrl"]
                    .as_str()
                    .context("a REST page not done and without nextRecordsUrl")?
                    .to_string(),
            );
        }
    }
    Ok(out)
}

/// The Bulk query the connector sends for `columns` of `object`: each compound column (a field
/// the org's describe names as some field's `compoundFieldName`) replaced by its components.
pub fn bulk_soql(org: &Org, token: &str, object: &str, columns: &[String]) -> Result<String> {
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let path = format!("{API}/sobjects/{object}/describe");
    let describe = bench_http::send(org.authority(), "GET", &path, &auth, None)?.json()?;
    let fields = describe["fields"]
        .as_array()
        .context("a describe without fields")?;
    let mut selected: Vec<&str> = Vec::new();
    for column in columns {
        let parts: Vec<&str> = fields
            .iter()
            .filter(|f| f["compoundFieldName"].as_str() == Some(column.as_str()))
            .filter_map(|f| f["name"].as_str())
            .collect();
        if parts.is_empty() {
            selected.push(column);
        } else {
            selected.extend(parts);
        }
    }
    Ok(format!("SELECT {} FROM {object}", selected.join(", ")))
}

/// Rows compared and the ids that differ (in either direction: missing on one side, or other
/// values), sorted.
pub fn compare(bulk: &HashMap<String, u64>, rest: &HashMap<String, u64>) -> (u64, Vec<String>) {
    let mut differ: Vec<String> = bulk
        .iter()
        .filter(|(id, h)| rest.get(*id) != Some(h))
        .map(|(id, _)| id.clone())
        .chain(rest.keys().filter(|id| !bulk.contains_key(*id)).cloned())
        .collect();
    differ.sort();
    (bulk.len().max(rest.len()) as u64, differ)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_text_ignores_key_order_and_number_spelling_only() {
        let a = json!({"street": "1 Main", "latitude": 45, "country": null, "n": [1, 2.5]});
        let b = json!({"n": [1.0, 2.5], "country": null, "latitude": 45.0, "street": "1 Main"});
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(
            fingerprint(&json!({"A": a}), &["A"]),
            fingerprint(&json!({"A": b}), &["A"])
        );
        for other in [
            json!({"street": "1 Main", "latitude": 45.000001, "country": null, "n": [1, 2.5]}),
            json!({"street": "1 Main", "latitude": 45, "n": [1, 2.5]}),
            json!({"street": "1 Main", "latitude": 45, "country": "", "n": [1, 2.5]}),
            json!({"street": "1 main", "latitude": 45, "country": null, "n": [1, 2.5]}),
        ] {
            assert_ne!(canonical(&a), canonical(&other), "{other}");
        }
        // A null compound and an absent one differ.
        assert_ne!(
            fingerprint(&json!({"A": null}), &["A"]),
            fingerprint(&json!({}), &["A"])
        );
        assert_eq!(canonical(&json!("a\"b")), "\"a\\\"b\"");
    }

    #[test]
    fn comparison_names_rows_missing_or_different_on_either_side() {
        let bulk: HashMap<String, u64> = [("a", 1), ("b", 2), ("c", 3)]
            .map(|(k, v)| (k.to_string(), v))
            .into();
        let rest: HashMap<String, u64> = [("a", 1), ("b", 9), ("d", 4)]
            .map(|(k, v)| (k.to_string(), v))
            .into();
        assert_eq!(
            compare(&bulk, &rest),
            (3, vec!["b".into(), "c".into(), "d".into()])
        );
        assert_eq!(compare(&bulk, &bulk), (3, vec![]));
    }
}
