//! The state handed to a sync: every form Airbyte passes, read per stream.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{invalid, parse_stream_state, SavedState};
use crate::config::json_kind;
use crate::error::Error;

/// The state given to a sync, per stream, from any of the forms Airbyte passes.
///
/// Accepted: `null` or `[]` (no state); a list of `AirbyteStateMessage`s of type `STREAM`
/// (`{"type": "STREAM", "stream": {"stream_descriptor": {"name": ...}, "stream_state": {...}}}`),
/// `GLOBAL` (its `stream_states` are read, the shared state ignored) or `LEGACY` (`data` is read
/// as below); one such message on its own; and the legacy whole object
/// `{"Account": {...}, "Lead": {...}}`, also wrapped as `{"type": "LEGACY", "data": {...}}`.
/// When a stream appears twice, the later state wins, except that in a list a `STREAM` or
/// `GLOBAL` entry wins over a `LEGACY` one (Airbyte's CDK reads no `LEGACY` message of a list);
/// an untyped message with `data` is `LEGACY`, the protocol's default. Namespaces are ignored
/// (Salesforce streams have none).
///
/// A file whose shape is wrong (not a list or object, a message of an unknown type) is refused
/// whole. A stream's own state that cannot be read is kept aside as [`InputState::refused`]: the
/// sync fails that stream when it is selected, and a stream not in the catalog is not read at
/// all, as Airbyte never reads the state of a stream it does not sync.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InputState {
    streams: BTreeMap<String, SavedState>,
    refused: BTreeMap<String, (String, String)>,
}

impl InputState {
    /// Reads a state file's text.
    pub fn from_json(text: &str) -> Result<InputState, Error> {
        let value: Value = serde_json::from_str(text).map_err(|e| Error::StateParse {
            path: "$".into(),
            reason: format!("not valid JSON ({e})"),
        })?;
        InputState::from_value(&value)
    }

    /// Reads a parsed state.
    pub fn from_value(value: &Value) -> Result<InputState, Error> {
        let mut state = InputState::default();
        match value {
            Value::Null => {}
            Value::Array(messages) => {
                // A stream's STREAM (or GLOBAL) entry wins over a LEGACY one wherever they stand:
                // Airbyte's CDK reads no LEGACY message of a list at all, so a LEGACY entry
                // only fills in streams the list gives no other state for.
                let mut legacy = InputState::default();
                for (i, message) in messages.iter().enumerate() {
                    // A whole STATE message is classed by the state it carries.
                    let carried = match message.get("type").and_then(Value::as_str) {
                        Some("STATE") => message.get("state").unwrap_or(message),
                        _ => message,
                    };
                    let is_legacy = carried
                        .as_object()
                        .and_then(message_type)
                        .is_some_and(|t| t == "LEGACY");
                    let into = if is_legacy { &mut legacy } else { &mut state };
                    into.read_message(message, &format!("[{i}]"))?;
                }
                for (name, saved) in legacy.streams {
                    if !state.streams.contains_key(&name) && !state.refused.contains_key(&name) {
                        state.streams.insert(name, saved);
                    }
                }
                for (name, refused) in legacy.refused {
                    if !state.streams.contains_key(&name) && !state.refused.contains_key(&name) {
                        state.refused.insert(name, refused);
                    }
                }
            }
            Value::Object(obj) if message_type(obj).is_some() => {
                state.read_message(value, "$")?;
            }
            Value::Object(obj) => state.read_legacy_object(obj, "$")?,
            other => {
                return Err(Error::StateParse {
                    path: "$".into(),
                    reason: format!(
                        "expected a list of state messages or an object of per-stream states, \
                         got {}",
                        json_kind(other)
                    ),
                })
            }
        }
        Ok(state)
    }

    /// The saved state of `stream`, if any was given.
    pub fn get(&self, stream: &str) -> Option<&SavedState> {
        self.streams.get(stream)
    }

    /// Why the state given for `stream` could not be read (`Error::StateInvalid`), if it could
    /// not; that stream then has no [`InputState::get`].
    pub fn refused(&self, stream: &str) -> Option<Error> {
        self.refused
            .get(stream)
            .map(|(path, reason)| invalid(stream, path, reason.clone()))
    }

    /// Keeps `stream`'s state, or why it could not be read; the later of two entries wins.
    fn keep(&mut self, stream: &str, parsed: Result<SavedState, Error>) -> Result<(), Error> {
        match parsed {
            Ok(saved) => {
                self.refused.remove(stream);
                self.streams.insert(stream.to_string(), saved);
            }
            Err(Error::StateInvalid { path, reason, .. }) => {
                self.streams.remove(stream);
                self.refused.insert(stream.to_string(), (path, reason));
            }
            Err(other) => return Err(other),
        }
        Ok(())
    }

    /// Every stream with a given state, by name.
    pub fn streams(&self) -> impl Iterator<Item = (&str, &SavedState)> {
        self.streams.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// True when no stream has a state (nor one that could not be read).
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty() && self.refused.is_empty()
    }

    /// Sets the state of `stream`, replacing any earlier one.
    pub(crate) fn insert(&mut self, stream: String, state: SavedState) {
        self.refused.remove(&stream);
        self.streams.insert(stream, state);
    }

    fn read_message(&mut self, message: &Value, path: &str) -> Result<(), Error> {
        let Some(obj) = message.as_object() else {
            return Err(Error::StateParse {
                path: path.into(),
                reason: format!(
                    "expected a state message object, got {}",
                    json_kind(message)
                ),
            });
        };
        match message_type(obj) {
            // A whole Airbyte message (`{"type": "STATE", "state": {...}}`, as a read writes it on
            // stdout): the state message it carries.
            Some("STATE") => match obj.get("state") {
                Some(inner) if inner.is_object() => {
                    self.read_message(inner, &format!("{path}.state"))
                }
                _ => Err(Error::StateParse {
                    path: format!("{path}.state"),
                    reason: "a STATE message without its `state` object".to_string(),
                }),
            },
            Some("STREAM") => self.read_stream_entry(
                obj.get("stream").unwrap_or(&Value::Null),
                &format!("{path}.stream"),
            ),
            Some("LEGACY") => match obj.get("data") {
                Some(Value::Object(data)) => self.read_legacy_object(data, &format!("{path}.data")),
                Some(Value::Null) | None => Ok(()),
                Some(other) => Err(Error::StateParse {
                    path: format!("{path}.data"),
                    reason: format!(
                        "expected an object of per-stream states, got {}",
                        json_kind(other)
                    ),
                }),
            },
            Some("GLOBAL") => {
                let global_path = format!("{path}.global.stream_states");
                let entries = obj
                    .get("global")
                    .and_then(|g| g.get("stream_states"))
                    .unwrap_or(&Value::Null);
                match entries {
                    Value::Null => Ok(()),
                    Value::Array(entries) => {
                        for (i, entry) in entries.iter().enumerate() {
                            self.read_stream_entry(entry, &format!("{global_path}[{i}]"))?;
                        }
                        Ok(())
                    }
                    other => Err(Error::StateParse {
                        path: global_path,
                        reason: format!("expected a list, got {}", json_kind(other)),
                    }),
                }
            }
            Some(other) => Err(Error::StateParse {
                path: format!("{path}.type"),
                reason: format!(
                    "`{other}` is not a state type; expected `STREAM`, `GLOBAL` or `LEGACY` (or \
                     a whole `STATE` message carrying one)"
                ),
            }),
            None => Err(Error::StateParse {
                path: format!("{path}.type"),
                reason: "missing; expected `STREAM`, `GLOBAL` or `LEGACY`".into(),
            }),
        }
    }

    /// `{"stream_descriptor": {"name": ...}, "stream_state": {...}}`.
    fn read_stream_entry(&mut self, entry: &Value, path: &str) -> Result<(), Error> {
        let name = entry
            .get("stream_descriptor")
            .and_then(|d| d.get("name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::StateParse {
                path: format!("{path}.stream_descriptor.name"),
                reason: "missing; every stream state names its stream".into(),
            })?;
        let saved = parse_stream_state(
            name,
            entry.get("stream_state").unwrap_or(&Value::Null),
            &format!("{path}.stream_state"),
        );
        self.keep(name, saved)
    }

    fn read_legacy_object(&mut self, obj: &Map<String, Value>, path: &str) -> Result<(), Error> {
        for (name, stream_state) in obj {
            let saved = parse_stream_state(name, stream_state, &format!("{path}.{name}"));
            self.keep(name, saved)?;
        }
        Ok(())
    }
}

/// The `type` of an `AirbyteStateMessage`; for an untyped one, `STREAM` when it has `stream`, or
/// `LEGACY` when it has `data` (the protocol's default type).
fn message_type(obj: &Map<String, Value>) -> Option<&str> {
    match obj.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        _ if obj.get("stream").is_some_and(Value::is_object) => Some("STREAM"),
        _ if obj.get("data").is_some_and(Value::is_object) => Some("LEGACY"),
        _ => None,
    }
}
