//! The `Describe` stream: one record per object, its describe.

use serde_json::{json, Map, Value};

/// The `Describe` stream Airbyte's connector offers besides the object streams: one record per
/// object, the object's describe as Salesforce sends it ([`crate::ObjectDescribe::describe`]).
/// Full refresh only; primary key `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescribeStream;

impl DescribeStream {
    /// The stream's name.
    pub const NAME: &'static str = "Describe";
    /// Its primary key: the object's API name.
    pub const PRIMARY_KEY: &'static str = "name";

    /// The stream's JSON schema (draft-07): the describe attributes, every one nullable, other
    /// attributes allowed.
    pub fn json_schema() -> Value {
        let mut properties = Map::new();
        for (name, kind) in OBJECT_ATTRIBUTES {
            properties.insert((*name).to_string(), scalar(kind));
        }
        properties.insert(
            "fields".to_string(),
            array_of(FIELD_ATTRIBUTES, |props| {
                props.insert(
                    "picklistValues".to_string(),
                    json!({"type": ["null", "array"], "items": object_of(&[
                        ("active", "boolean"), ("defaultValue", "boolean"), ("label", "string"),
                        ("value", "string"), ("validFor", "string"),
                    ])}),
                );
                props.insert(
                    "referenceTo".to_string(),
                    json!({"type": ["null", "array"], "items": {"type": ["null", "string"]}}),
                );
                props.insert(
                    "filteredLookupInfo".to_string(),
                    json!({"type": ["null", "object"], "additionalProperties": true}),
                );
            }),
        );
        properties.insert(
            "childRelationships".to_string(),
            array_of(
                &[
                    ("cascadeDelete", "boolean"),
                    ("childSObject", "string"),
                    ("deprecatedAndHidden", "boolean"),
                    ("field", "string"),
                    ("relationshipName", "string"),
                    ("restrictedDelete", "boolean"),
                ],
                |props| {
                    for list in ["junctionIdListNames", "junctionReferenceTo"] {
                        props.insert(
                            list.to_string(),
                            json!({"type": ["null", "array"], "items": {"type": ["null", "string"]}}),
                        );
                    }
                },
            ),
        );
        properties.insert(
            "recordTypeInfos".to_string(),
            array_of(
                &[
                    ("active", "boolean"),
                    ("available", "boolean"),
                    ("defaultRecordTypeMapping", "boolean"),
                    ("developerName", "string"),
                    ("master", "boolean"),
                    ("name", "string"),
                    ("recordTypeId", "string"),
                ],
                |_| {},
            ),
        );
        for list in ["supportedScopes", "namedLayoutInfos"] {
            properties.insert(
                list.to_string(),
                array_of(&[("label", "string"), ("name", "string")], |_| {}),
            );
        }
        properties.insert(
            "actionOverrides".to_string(),
            array_of(
                &[
                    ("formFactor", "string"),
                    ("isAvailableInTouch", "boolean"),
                    ("name", "string"),
                    ("pageId", "string"),
                    ("url", "string"),
                ],
                |_| {},
            ),
        );
        properties.insert(
            "urls".to_string(),
            json!({"type": ["null", "object"], "additionalProperties": {"type": ["null", "string"]}}),
        );
        json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": true,
            "properties": properties,
        })
    }
}

/// Top-level scalar attributes of a describe.
const OBJECT_ATTRIBUTES: &[(&str, &str)] = &[
    ("activateable", "boolean"),
    ("associateEntityType", "string"),
    ("associateParentEntity", "string"),
    ("compactLayoutable", "boolean"),
    ("createable", "boolean"),
    ("custom", "boolean"),
    ("customSetting", "boolean"),
    ("dataTranslationEnabled", "boolean"),
    ("deepCloneable", "boolean"),
    ("defaultImplementation", "string"),
    ("deletable", "boolean"),
    ("deprecatedAndHidden", "boolean"),
    ("extendedBy", "string"),
    ("extendsInterfaces", "string"),
    ("feedEnabled", "boolean"),
    ("hasSubtypes", "boolean"),
    ("implementedBy", "string"),
    ("implementsInterfaces", "string"),
    ("isInterface", "boolean"),
    ("isSubtype", "boolean"),
    ("keyPrefix", "string"),
    ("label", "string"),
    ("labelPlural", "string"),
    ("layoutable", "boolean"),
    ("listviewable", "boolean"),
    ("lookupLayoutable", "boolean"),
    ("mergeable", "boolean"),
    ("mruEnabled", "boolean"),
    ("name", "string"),
    ("networkScopeFieldName", "string"),
    ("queryable", "boolean"),
    ("replicateable", "boolean"),
    ("retrieveable", "boolean"),
    ("searchLayoutable", "boolean"),
    ("searchable", "boolean"),
    ("sobjectDescribeOption", "string"),
    ("triggerable", "boolean"),
    ("undeletable", "boolean"),
    ("updateable", "boolean"),
    ("urlDetail", "string"),
    ("urlEdit", "string"),
    ("urlNew", "string"),
];

/// Scalar attributes of one entry of a describe's `fields`.
const FIELD_ATTRIBUTES: &[(&str, &str)] = &[
    ("aggregatable", "boolean"),
    ("aiPredictionField", "boolean"),
    ("autoNumber", "boolean"),
    ("byteLength", "integer"),
    ("calculated", "boolean"),
    ("calculatedFormula", "string"),
    ("cascadeDelete", "boolean"),
    ("caseSensitive", "boolean"),
    ("compoundFieldName", "string"),
    ("controllerName", "string"),
    ("createable", "boolean"),
    ("custom", "boolean"),
    ("defaultValueFormula", "string"),
    ("defaultedOnCreate", "boolean"),
    ("dependentPicklist", "boolean"),
    ("deprecatedAndHidden", "boolean"),
    ("digits", "integer"),
    ("displayLocationInDecimal", "boolean"),
    ("encrypted", "boolean"),
    ("externalId", "boolean"),
    ("extraTypeInfo", "string"),
    ("filterable", "boolean"),
    ("formulaTreatNullNumberAsZero", "boolean"),
    ("groupable", "boolean"),
    ("highScaleNumber", "boolean"),
    ("htmlFormatted", "boolean"),
    ("idLookup", "boolean"),
    ("inlineHelpText", "string"),
    ("label", "string"),
    ("length", "integer"),
    ("mask", "string"),
    ("maskType", "string"),
    ("name", "string"),
    ("nameField", "boolean"),
    ("namePointing", "boolean"),
    ("nillable", "boolean"),
    ("permissionable", "boolean"),
    ("polymorphicForeignKey", "boolean"),
    ("precision", "integer"),
    ("queryByDistance", "boolean"),
    ("referenceTargetField", "string"),
    ("relationshipName", "string"),
    ("relationshipOrder", "integer"),
    ("restrictedDelete", "boolean"),
    ("restrictedPicklist", "boolean"),
    ("scale", "integer"),
    ("searchPrefilterable", "boolean"),
    ("soapType", "string"),
    ("sortable", "boolean"),
    ("type", "string"),
    ("unique", "boolean"),
    ("updateable", "boolean"),
    ("writeRequiresMasterRead", "boolean"),
];

fn scalar(kind: &str) -> Value {
    json!({"type": ["null", kind]})
}

fn object_of(attributes: &[(&str, &str)]) -> Value {
    let props: Map<String, Value> = attributes
        .iter()
        .map(|(name, kind)| ((*name).to_string(), scalar(kind)))
        .collect();
    json!({"type": ["null", "object"], "properties": props})
}

fn array_of(attributes: &[(&str, &str)], extra: impl FnOnce(&mut Map<String, Value>)) -> Value {
    let mut item = object_of(attributes);
    if let Some(props) = item.get_mut("properties").and_then(Value::as_object_mut) {
        extra(props);
    }
    json!({"type": ["null", "array"], "items": item})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_describe_schema_names_the_key_and_the_field_list() {
        let schema = DescribeStream::json_schema();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], true);
        let props = &schema["properties"];
        assert_eq!(
            props[DescribeStream::PRIMARY_KEY]["type"],
            json!(["null", "string"])
        );
        assert_eq!(props["queryable"]["type"], json!(["null", "boolean"]));
        let field = &props["fields"]["items"]["properties"];
        assert_eq!(field["type"]["type"], json!(["null", "string"]));
        assert_eq!(field["length"]["type"], json!(["null", "integer"]));
        assert_eq!(field["referenceTo"]["type"], json!(["null", "array"]));
        assert_eq!(
            field["picklistValues"]["items"]["properties"]["value"]["type"],
            json!(["null", "string"])
        );
        assert_eq!(
            props["childRelationships"]["items"]["properties"]["childSObject"]["type"],
            json!(["null", "string"])
        );
    }
}
