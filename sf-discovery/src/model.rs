//! The domain types of a catalog: streams, their fields and field types, and records.

use std::sync::Arc;

use serde_json::{json, Map, Value};

/// A Salesforce field type, as `describe` names it (`type`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// `id`
    Id,
    /// `boolean`
    Boolean,
    /// `string`
    String,
    /// `textarea`
    Textarea,
    /// `picklist`
    Picklist,
    /// `multipicklist` (values joined by `;`)
    Multipicklist,
    /// `combobox`
    Combobox,
    /// `reference`
    Reference,
    /// `currency`
    Currency,
    /// `percent`
    Percent,
    /// `double`
    Double,
    /// `int`
    Int,
    /// `long`
    Long,
    /// `date`
    Date,
    /// `datetime`
    DateTime,
    /// `time`
    Time,
    /// `base64` (not servable by Bulk)
    Base64,
    /// `address` compound field (not servable by Bulk)
    Address,
    /// `location` compound field (not servable by Bulk)
    Location,
    /// `email`
    Email,
    /// `phone`
    Phone,
    /// `url`
    Url,
    /// `encryptedstring`
    EncryptedString,
    /// `anyType`
    AnyType,
    /// `complexvalue` (not servable by Bulk)
    ComplexValue,
    /// `json`
    Json,
    /// `datacategorygroupreference`
    DataCategoryGroupReference,
    /// `masterrecord`
    MasterRecord,
    /// `byte`
    Byte,
    /// A type this crate does not know: treated as a string.
    Unknown(String),
}

/// How a field's values are typed in records and schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// JSON string.
    String,
    /// JSON number (currency, percent, double, long).
    Number,
    /// JSON integer (`int`).
    Integer,
    /// JSON boolean.
    Boolean,
    /// A string `YYYY-MM-DD`.
    Date,
    /// A string `YYYY-MM-DDTHH:MM:SS.sssZ`.
    DateTime,
    /// A base64 string (REST gives a URL to the blob).
    Base64,
    /// A JSON object (address, location).
    Object,
}

impl FieldType {
    /// Parses `describe`'s `type` (case as Salesforce sends it; matched case-insensitively).
    pub fn from_wire(name: &str) -> FieldType {
        match name.to_ascii_lowercase().as_str() {
            "id" => FieldType::Id,
            "boolean" => FieldType::Boolean,
            "string" => FieldType::String,
            "textarea" => FieldType::Textarea,
            "picklist" => FieldType::Picklist,
            "multipicklist" => FieldType::Multipicklist,
            "combobox" => FieldType::Combobox,
            "reference" => FieldType::Reference,
            "currency" => FieldType::Currency,
            "percent" => FieldType::Percent,
            "double" => FieldType::Double,
            "int" => FieldType::Int,
            "long" => FieldType::Long,
            "date" => FieldType::Date,
            "datetime" => FieldType::DateTime,
            "time" => FieldType::Time,
            "base64" => FieldType::Base64,
            "address" => FieldType::Address,
            "location" => FieldType::Location,
            "email" => FieldType::Email,
            "phone" => FieldType::Phone,
            "url" => FieldType::Url,
            "encryptedstring" => FieldType::EncryptedString,
            "anytype" => FieldType::AnyType,
            "complexvalue" => FieldType::ComplexValue,
            "json" => FieldType::Json,
            "datacategorygroupreference" => FieldType::DataCategoryGroupReference,
            "masterrecord" => FieldType::MasterRecord,
            "byte" => FieldType::Byte,
            _ => FieldType::Unknown(name.to_string()),
        }
    }

    /// The name `describe` uses.
    pub fn as_wire(&self) -> &str {
        match self {
            FieldType::Id => "id",
            FieldType::Boolean => "boolean",
            FieldType::String => "string",
            FieldType::Textarea => "textarea",
            FieldType::Picklist => "picklist",
            FieldType::Multipicklist => "multipicklist",
            FieldType::Combobox => "combobox",
            FieldType::Reference => "reference",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Double => "double",
            FieldType::Int => "int",
            FieldType::Long => "long",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Time => "time",
            FieldType::Base64 => "base64",
            FieldType::Address => "address",
            FieldType::Location => "location",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::EncryptedString => "encryptedstring",
            FieldType::AnyType => "anyType",
            FieldType::ComplexValue => "complexvalue",
            FieldType::Json => "json",
            FieldType::DataCategoryGroupReference => "datacategorygroupreference",
            FieldType::MasterRecord => "masterrecord",
            FieldType::Byte => "byte",
            FieldType::Unknown(name) => name,
        }
    }

    /// How values of this type are typed (Airbyte source-salesforce's mapping).
    pub fn value_kind(&self) -> ValueKind {
        match self {
            FieldType::Boolean => ValueKind::Boolean,
            FieldType::Currency | FieldType::Percent | FieldType::Double | FieldType::Long => {
                ValueKind::Number
            }
            FieldType::Int => ValueKind::Integer,
            FieldType::Date => ValueKind::Date,
            FieldType::DateTime => ValueKind::DateTime,
            FieldType::Base64 => ValueKind::Base64,
            FieldType::Address | FieldType::Location => ValueKind::Object,
            _ => ValueKind::String,
        }
    }

    /// True for types Bulk API 2.0 cannot select: base64, address, location, complexvalue.
    pub fn bulk_unservable(&self) -> bool {
        matches!(
            self,
            FieldType::Base64 | FieldType::Address | FieldType::Location | FieldType::ComplexValue
        )
    }
}

/// One field of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    /// API name, e.g. `SystemModstamp`, `Amount__c`.
    pub name: String,
    /// Its type.
    pub field_type: FieldType,
    /// A formula field (`calculated: true`): its value changes without touching `SystemModstamp`.
    pub calculated: bool,
    /// For components of an address/location (`BillingCity`), the compound field's name.
    pub compound_field_name: Option<String>,
    /// Usable in `WHERE`.
    pub filterable: bool,
    /// Usable in `ORDER BY`.
    pub sortable: bool,
    /// A custom field (`__c`).
    pub custom: bool,
}

impl FieldSpec {
    /// A field with the given name and type and the common flags (filterable, sortable, not a formula).
    pub fn new(name: impl Into<String>, field_type: FieldType) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            field_type,
            calculated: false,
            compound_field_name: None,
            filterable: true,
            sortable: true,
            custom: false,
        }
    }

    /// How this field's values are typed.
    pub fn value_kind(&self) -> ValueKind {
        self.field_type.value_kind()
    }

    /// The field's JSON schema; every property is nullable.
    ///
    /// The same schema Airbyte's source-salesforce gives the type, so catalogs match: `["string",
    /// "null"]` for string-like types (`time` without a format), `date`/`date-time`/`base64`
    /// formats, numbers for currency/percent/double/long, integers for `int`, and objects for
    /// `address` (street, city, state, postalCode, country, geocodeAccuracy, latitude, longitude)
    /// and `location` (latitude, longitude).
    pub fn json_schema(&self) -> Value {
        let num_or_null = json!({"type": ["null", "number"]});
        let str_or_null = json!({"type": ["null", "string"]});
        match &self.field_type {
            FieldType::Address => json!({
                "type": ["object", "null"],
                "properties": {
                    "street": str_or_null, "state": str_or_null, "postalCode": str_or_null,
                    "city": str_or_null, "country": str_or_null,
                    "longitude": num_or_null, "latitude": num_or_null,
                    "geocodeAccuracy": str_or_null,
                }
            }),
            FieldType::Location => json!({
                "type": ["object", "null"],
                "properties": {"longitude": num_or_null, "latitude": num_or_null}
            }),
            other => match other.value_kind() {
                ValueKind::Boolean => json!({"type": ["boolean", "null"]}),
                ValueKind::Number => json!({"type": ["number", "null"]}),
                ValueKind::Integer => json!({"type": ["integer", "null"]}),
                ValueKind::Date => json!({"type": ["string", "null"], "format": "date"}),
                ValueKind::DateTime => json!({"type": ["string", "null"], "format": "date-time"}),
                ValueKind::Base64 => json!({"type": ["string", "null"], "format": "base64"}),
                ValueKind::String | ValueKind::Object => json!({"type": ["string", "null"]}),
            },
        }
    }
}

/// One stream: a queryable object with its fields and the facts the sync engine needs.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSpec {
    /// The object's API name, e.g. `Account`, `Invoice__c`.
    pub name: String,
    /// Its fields, in describe order.
    pub fields: Vec<FieldSpec>,
    /// `Id` when the object has one.
    pub primary_key: Option<String>,
    /// The first of `SystemModstamp`, `LastModifiedDate`, `CreatedDate`, `LoginTime` it has.
    pub cursor_field: Option<String>,
    /// False when the object has no cursor or rejects filtering on it: full refresh only.
    pub supports_incremental: bool,
    /// The object has `IsDeleted`: read with queryAll, deletes come out as `IsDeleted=true`.
    pub has_is_deleted: bool,
    /// A custom object.
    pub custom: bool,
}

impl StreamSpec {
    /// The cursor candidates, in order of preference.
    pub const CURSOR_CANDIDATES: [&'static str; 4] = [
        "SystemModstamp",
        "LastModifiedDate",
        "CreatedDate",
        "LoginTime",
    ];

    /// A stream from an object's fields (in describe order), with the facts derived as discovery
    /// derives them: primary key `Id` when present, cursor the first of
    /// [`StreamSpec::CURSOR_CANDIDATES`] present, incremental when there is a cursor and the object
    /// is not on the no-filtering list, `has_is_deleted` when an `IsDeleted` field exists.
    pub fn from_fields(
        name: impl Into<String>,
        custom: bool,
        fields: Vec<FieldSpec>,
    ) -> StreamSpec {
        let name = name.into();
        let has = |wanted: &str| fields.iter().any(|f| f.name == wanted);
        let primary_key = has("Id").then(|| "Id".to_string());
        let cursor_field = StreamSpec::CURSOR_CANDIDATES
            .iter()
            .find(|c| has(c))
            .map(|c| (*c).to_string());
        let supports_incremental =
            cursor_field.is_some() && !crate::lists::filtering_unsupported(&name);
        let has_is_deleted = has("IsDeleted");
        StreamSpec {
            name,
            fields,
            primary_key,
            cursor_field,
            supports_incremental,
            has_is_deleted,
            custom,
        }
    }

    /// The field called `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Fields Bulk API 2.0 cannot select (base64, address, location, complexvalue).
    pub fn bulk_unservable_fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.fields
            .iter()
            .filter(|f| f.field_type.bulk_unservable())
    }

    /// Formula fields.
    pub fn formula_fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.fields.iter().filter(|f| f.calculated)
    }

    /// The stream's JSON schema (draft-07, additional properties allowed, every property nullable).
    pub fn json_schema(&self) -> Value {
        let mut properties = Map::new();
        for field in &self.fields {
            properties.insert(field.name.clone(), field.json_schema());
        }
        json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": true,
            "properties": properties,
        })
    }
}

/// The column names of a record set, shared by every record of it.
pub type Columns = Arc<[String]>;

/// One record: values in the order of its shared columns.
///
/// REST and Bulk both yield records in this shape, with the same value forms (datetimes
/// `YYYY-MM-DDTHH:MM:SS.sssZ`, numbers as JSON numbers, explicit nulls, compound fields as objects),
/// so a record looks the same whichever API read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Column names, shared.
    pub columns: Columns,
    /// Values, one per column.
    pub values: Vec<Value>,
}

impl Record {
    /// The value of column `name` (exact match first, then case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Value> {
        let idx = self.columns.iter().position(|c| c == name).or_else(|| {
            self.columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(name))
        })?;
        self.values.get(idx)
    }

    /// The record's `Id` as a string, if it has one.
    pub fn id(&self) -> Option<&str> {
        self.get("Id").and_then(Value::as_str)
    }

    /// The record as a JSON object.
    pub fn to_json(&self) -> Map<String, Value> {
        self.columns
            .iter()
            .cloned()
            .zip(self.values.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip_and_unknown_types_are_strings() {
        for name in [
            "id",
            "anyType",
            "datetime",
            "address",
            "base64",
            "complexvalue",
        ] {
            assert_eq!(FieldType::from_wire(name).as_wire(), name);
        }
        let odd = FieldType::from_wire("quantum");
        assert_eq!(odd, FieldType::Unknown("quantum".to_string()));
        assert_eq!(odd.value_kind(), ValueKind::String);
        assert!(FieldType::Address.bulk_unservable());
        assert!(!FieldType::Currency.bulk_unservable());
    }

    #[test]
    fn every_field_type_maps_to_airbytes_schema() {
        let string = json!({"type": ["string", "null"]});
        // Types whose values are plain strings, every one of them servable by Bulk.
        let plain = [
            "id",
            "string",
            "textarea",
            "picklist",
            "multipicklist",
            "combobox",
            "reference",
            "time",
            "email",
            "phone",
            "url",
            "encryptedstring",
            "anyType",
            "json",
            "datacategorygroupreference",
            "masterrecord",
            "byte",
            "calculated",
            "somethingnew",
        ];
        let mut table: Vec<(&str, Value, bool)> = plain
            .iter()
            .map(|wire| (*wire, string.clone(), false))
            .collect();
        table.extend([
            ("boolean", json!({"type": ["boolean", "null"]}), false),
            ("currency", json!({"type": ["number", "null"]}), false),
            ("percent", json!({"type": ["number", "null"]}), false),
            ("double", json!({"type": ["number", "null"]}), false),
            ("int", json!({"type": ["integer", "null"]}), false),
            ("long", json!({"type": ["number", "null"]}), false),
            (
                "date",
                json!({"type": ["string", "null"], "format": "date"}),
                false,
            ),
            (
                "datetime",
                json!({"type": ["string", "null"], "format": "date-time"}),
                false,
            ),
            (
                "base64",
                json!({"type": ["string", "null"], "format": "base64"}),
                true,
            ),
            ("complexvalue", string.clone(), true),
        ]);
        assert_eq!(table.len(), 29);
        for (wire, schema, unservable) in &table {
            let field = FieldSpec::new("F", FieldType::from_wire(wire));
            assert_eq!(&field.json_schema(), schema, "{wire}");
            assert_eq!(field.field_type.bulk_unservable(), *unservable, "{wire}");
        }
        let n = json!({"type": ["null", "number"]});
        let s = json!({"type": ["null", "string"]});
        assert_eq!(
            FieldSpec::new("BillingAddress", FieldType::Address).json_schema(),
            json!({"type": ["object", "null"], "properties": {
                "street": s, "state": s, "postalCode": s, "city": s, "country": s,
                "longitude": n, "latitude": n, "geocodeAccuracy": s,
            }})
        );
        assert_eq!(
            FieldSpec::new("Geo__c", FieldType::Location).json_schema(),
            json!({"type": ["object", "null"], "properties": {"longitude": n, "latitude": n}})
        );
        assert!(FieldType::Address.bulk_unservable() && FieldType::Location.bulk_unservable());
    }

    #[test]
    fn streams_pick_key_and_cursor_by_priority() {
        let dt = |name: &str| FieldSpec::new(name, FieldType::DateTime);
        let id = FieldSpec::new("Id", FieldType::Id);
        // (object, fields, key, cursor, incremental)
        type Case<'a> = (
            &'a str,
            Vec<FieldSpec>,
            Option<&'a str>,
            Option<&'a str>,
            bool,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "Account",
                vec![
                    id.clone(),
                    dt("CreatedDate"),
                    dt("LastModifiedDate"),
                    dt("SystemModstamp"),
                ],
                Some("Id"),
                Some("SystemModstamp"),
                true,
            ),
            (
                "Thing__c",
                vec![id.clone(), dt("CreatedDate"), dt("LastModifiedDate")],
                Some("Id"),
                Some("LastModifiedDate"),
                true,
            ),
            (
                "AccountHistory",
                vec![id.clone(), dt("CreatedDate")],
                Some("Id"),
                Some("CreatedDate"),
                true,
            ),
            (
                "LoginHistory",
                vec![id.clone(), dt("LoginTime")],
                Some("Id"),
                Some("LoginTime"),
                true,
            ),
            ("CaseStatus", vec![id.clone()], Some("Id"), None, false),
            (
                "AggregateThing",
                vec![dt("CreatedDate")],
                None,
                Some("CreatedDate"),
                true,
            ),
            // On the no-filtering list: a cursor, but full refresh only.
            (
                "LoginEvent",
                vec![id.clone(), dt("CreatedDate")],
                Some("Id"),
                Some("CreatedDate"),
                false,
            ),
            // Names match exactly, as Airbyte matches them.
            (
                "Odd",
                vec![FieldSpec::new("id", FieldType::Id), dt("systemmodstamp")],
                None,
                None,
                false,
            ),
        ];
        for (name, fields, key, cursor, incremental) in cases {
            let s = StreamSpec::from_fields(name, false, fields);
            assert_eq!(s.primary_key.as_deref(), key, "{name}");
            assert_eq!(s.cursor_field.as_deref(), cursor, "{name}");
            assert_eq!(s.supports_incremental, incremental, "{name}");
            assert!(!s.has_is_deleted, "{name}");
        }
        let s = StreamSpec::from_fields(
            "Contact",
            false,
            vec![id, FieldSpec::new("IsDeleted", FieldType::Boolean)],
        );
        assert!(s.has_is_deleted);
    }

    #[test]
    fn records_look_up_columns() {
        let rec = Record {
            columns: Arc::from(vec!["Id".to_string(), "Name".to_string()]),
            values: vec![json!("001"), Value::Null],
        };
        assert_eq!(rec.id(), Some("001"));
        assert_eq!(rec.get("name"), Some(&Value::Null));
        assert_eq!(rec.get("Missing"), None);
        assert_eq!(
            Value::Object(rec.to_json()),
            json!({"Id": "001", "Name": null})
        );
    }
}
