//! The classification of Salesforce's answers, case by case.
use super::*;

#[test]
fn rest_array_body() {
    let body = br#"[{"message":"No such column 'Foo' on entity 'Account'.","errorCode":"INVALID_FIELD","fields":["Foo"]}]"#;
    let e = ApiError::from_body(400, body);
    assert_eq!(e.error_code.as_deref(), Some("INVALID_FIELD"));
    assert_eq!(e.message, "No such column 'Foo' on entity 'Account'.");
    assert_eq!(e.fields, vec!["Foo".to_string()]);
    assert_eq!(e.kind(), ErrorKind::InvalidField);
}

#[test]
fn oauth_object_body() {
    let e = ApiError::from_body(
        400,
        br#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
    );
    assert_eq!(e.error_code.as_deref(), Some("invalid_grant"));
    assert_eq!(e.message, "expired access/refresh token");
    assert_eq!(
        LoginFailure::from_api(&e),
        LoginFailure::ExpiredRefreshToken
    );
}

#[test]
fn empty_and_html_bodies() {
    let e = ApiError::from_body(503, b"");
    assert_eq!(e.error_code, None);
    assert_eq!(e.message, "");
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert_eq!(e.to_string(), "HTTP 503 with an empty body");
    let html = format!("<html><body>{}</body></html>", "x".repeat(1000));
    let e = ApiError::from_body(502, html.as_bytes());
    assert!(e.message.starts_with("<html><body>xxx"));
    assert!(e.message.len() < 320, "long bodies are cut");
    // An empty JSON array is not an error list.
    let e = ApiError::from_body(500, b"[]");
    assert_eq!(e.message, "[]");
}

#[test]
fn classification_table() {
    let cases: &[(u16, Option<&str>, &str, ErrorKind)] = &[
        (
            401,
            Some("INVALID_SESSION_ID"),
            "Session expired or invalid",
            ErrorKind::Unauthenticated,
        ),
        (
            403,
            Some("REQUEST_LIMIT_EXCEEDED"),
            "TotalRequests Limit exceeded.",
            ErrorKind::DailyLimitExceeded,
        ),
        (
            403,
            Some("REQUEST_LIMIT_EXCEEDED"),
            "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
            ErrorKind::ConcurrentLimit,
        ),
        (
            403,
            Some("REQUEST_LIMIT_EXCEEDED"),
            "ConcurrentPerOrgLongTxn Limit exceeded.",
            ErrorKind::ConcurrentLimit,
        ),
        (
            404,
            Some("NOT_FOUND"),
            "The requested resource does not exist",
            ErrorKind::NotFound,
        ),
        (
            400,
            Some("INVALID_FIELD"),
            "No such column",
            ErrorKind::InvalidField,
        ),
        (
            400,
            Some("MALFORMED_QUERY"),
            "unexpected token",
            ErrorKind::MalformedQuery,
        ),
        (
            400,
            Some("INVALID_TYPE"),
            "sObject type 'Foo__c' is not supported",
            ErrorKind::ObjectNotQueryable,
        ),
        (
            400,
            Some("QUERY_TIMEOUT"),
            "Your query request was running for too long.",
            ErrorKind::QueryTimeout,
        ),
        (
            400,
            Some("INVALID_QUERY_LOCATOR"),
            "invalid query locator",
            ErrorKind::InvalidQueryLocator,
        ),
        (
            400,
            Some("EXCEEDED_ID_LIMIT"),
            "The ID limit of 600000 was exceeded",
            ErrorKind::TooManyResults,
        ),
        (
            400,
            Some("INVALID_REPLICATION_DATE"),
            "startDate is before the earliest date available",
            ErrorKind::ReplicationDateRefused,
        ),
        (
            503,
            Some("SERVER_UNAVAILABLE"),
            "Server too busy",
            ErrorKind::Transient,
        ),
        (
            500,
            Some("UNKNOWN_EXCEPTION"),
            "An unexpected error occurred",
            ErrorKind::Transient,
        ),
        (
            400,
            Some("UNKNOWN_EXCEPTION"),
            "An unexpected error occurred",
            ErrorKind::Transient,
        ),
        (406, None, "", ErrorKind::Transient),
        (420, None, "", ErrorKind::Transient),
        (429, None, "", ErrorKind::Transient),
        (
            403,
            Some("INSUFFICIENT_ACCESS"),
            "no",
            ErrorKind::InsufficientAccess,
        ),
        (
            400,
            Some("LIMIT_EXCEEDED"),
            "Max bulk v2 query jobs (10000) per 24 hrs has been reached (10021)",
            ErrorKind::BulkJobLimit,
        ),
        (
            400,
            Some("INVALIDENTITY"),
            "Account is not supported by the Bulk API",
            ErrorKind::BulkNotSupported,
        ),
        (
            400,
            Some("FUNCTIONALITY_NOT_ENABLED"),
            "Selecting compound data not supported in Bulk Query",
            ErrorKind::BulkNotSupported,
        ),
        (
            400,
            Some("API_ERROR"),
            "Entity 'CaseStatus' does not support query",
            ErrorKind::BulkNotSupported,
        ),
        (
            400,
            Some("API_ERROR"),
            "Implementation restriction: ContentDocumentLink requires a filter by a single Id \
             on ContentDocumentId or LinkedEntityId using the equals operator or multiple Id's \
             using the IN operator.",
            ErrorKind::FilterRequired,
        ),
        (
            400,
            Some("MALFORMED_QUERY"),
            "Implementation restriction: When querying the Vote object, you must filter using \
             the following syntax: ParentId = [single ID], Parent.Type = [single Type], Id = \
             [single ID], or Id IN [list of ID's].",
            ErrorKind::FilterRequired,
        ),
        (
            400,
            Some("MALFORMED_QUERY"),
            "Implementation restriction: activity aggregate relationships only allow security \
             evaluation for non-admin users when LIMIT is specified and at most 500",
            ErrorKind::PermissionRequired,
        ),
        (
            400,
            Some("TXN_SECURITY_METERING_ERROR"),
            "took too long",
            ErrorKind::PermissionRequired,
        ),
        (414, None, "", ErrorKind::RequestTooLong),
        (431, None, "", ErrorKind::RequestTooLong),
        // A proxy's "Request Timeout": nothing refused.
        (408, None, "", ErrorKind::Transient),
        (
            408,
            None,
            "<html><body>Request Timeout</body></html>",
            ErrorKind::Transient,
        ),
        // Another process renews with the same refresh token at this moment.
        (
            400,
            Some("invalid_grant"),
            "token request is already being processed",
            ErrorKind::Transient,
        ),
        (
            400,
            Some("invalid_grant"),
            "authentication failure",
            ErrorKind::Other,
        ),
        (400, Some("API_ERROR"), "something else", ErrorKind::Other),
        (410, None, "", ErrorKind::Other),
    ];
    for (status, code, msg, want) in cases {
        assert_eq!(
            classify(*status, *code, msg),
            *want,
            "{status} {code:?} {msg}"
        );
    }
}

#[test]
fn failed_jobs_are_classified_by_their_message() {
    let cases = [
        ("Retried more than 15 times", ErrorKind::QueryTimeout),
        (
            "Query timed out: the query took too long",
            ErrorKind::QueryTimeout,
        ),
        (
            "Implementation restriction: filter on Id",
            ErrorKind::PermissionRequired,
        ),
        (
            "Implementation restriction: FieldDefinition requires a filter by a single Durable \
             Id, EntityDefinitionId or QualifiedApiName",
            ErrorKind::FilterRequired,
        ),
        (
            "Entity 'CaseStatus' does not support query",
            ErrorKind::BulkNotSupported,
        ),
        (
            "Unexpected exception encountered in query processing. Please contact support \
             with the Job Id.",
            ErrorKind::JobFailed,
        ),
        (
            "insufficient access rights on cross-reference id",
            ErrorKind::JobFailed,
        ),
    ];
    for (message, want) in cases {
        assert_eq!(classify_job_failure(message), want, "{message}");
    }
}

#[test]
fn permissions_and_fields_are_named() {
    let api = |code: &str, message: &str| ApiError {
        status: 400,
        error_code: Some(code.to_string()),
        message: message.to_string(),
        fields: Vec::new(),
    };
    assert_eq!(
        api("API_ERROR", " Implementation restriction: x").required_permission(),
        Some(VIEW_ALL_DATA)
    );
    assert_eq!(
        api("TXN_SECURITY_METERING_ERROR", "slow").required_permission(),
        Some(EXEMPT_FROM_TRANSACTION_SECURITY)
    );
    assert_eq!(api("API_ERROR", "other").required_permission(), None);
    // A filter restriction asks for a WHERE clause, not a permission.
    assert_eq!(
        api(
            "API_ERROR",
            "Implementation restriction: ContentDocumentLink requires a filter by a single Id"
        )
        .required_permission(),
        None
    );
    assert_eq!(
        api(
            "MALFORMED_QUERY",
            "Implementation restriction: When querying the Vote object, you must filter using"
        )
        .required_permission(),
        None
    );
    let msg = "\nLastReferencedDate, Jigsaw, CleanStatus\n ^\nERROR at Row:1:Column:687\n\
               No such column 'CleanStatus' on entity 'Account'. If you are attempting to use \
               a custom field, be sure to append the '__c' after the custom field name.";
    assert_eq!(
        api("INVALID_FIELD", msg).field_name().as_deref(),
        Some("CleanStatus")
    );
    let mut listed = api("INVALID_FIELD", "bad field");
    listed.fields = vec!["Foo__c".to_string()];
    assert_eq!(listed.field_name().as_deref(), Some("Foo__c"));
    assert_eq!(field_in_message("No such column '' on entity"), None);
    assert_eq!(field_in_message("something else"), None);
    assert_eq!(
        field_in_message("No such column 'Foo__c' on entity 'Account'.").as_deref(),
        Some("Foo__c")
    );
    assert_eq!(field_in_message("No such column 'unterminated"), None);
}

#[test]
fn kinds_of_this_crates_errors() {
    let login = Error::Login {
        failure: LoginFailure::ExpiredRefreshToken,
        api: ApiError::from_body(400, br#"{"error":"invalid_grant"}"#),
    };
    assert_eq!(login.kind(), ErrorKind::LoginRefused);
    assert_eq!(login.error_code(), Some("invalid_grant"));
    let data = Error::Api {
        operation: "GET query".into(),
        api: ApiError::from_body(
            401,
            br#"[{"errorCode":"INVALID_SESSION_ID","message":"x"}]"#,
        ),
    };
    assert_eq!(data.kind(), ErrorKind::Unauthenticated);
    let url = Error::InvalidLoginUrl {
        url: "ftp://x".into(),
        reason: "use https".into(),
    };
    assert_eq!(url.kind(), ErrorKind::InvalidConfig);
    assert_eq!(url.error_code(), None);
    let build = Error::InvalidRequest {
        operation: "GET x".into(),
        message: "relative URL".into(),
    };
    assert_eq!(build.kind(), ErrorKind::InvalidRequest);
    let decode = Error::Decode {
        operation: "GET x".into(),
        message: "not JSON".into(),
    };
    assert_eq!(decode.kind(), ErrorKind::UnexpectedBody);
    let redirected = Error::Redirected {
        operation: "POST /services/oauth2/token".into(),
        status: 307,
        location: "http://proxy.example".into(),
    };
    assert_eq!(redirected.kind(), ErrorKind::InvalidConfig);
    assert_eq!(redirected.error_code(), None);
    let text = redirected.to_string();
    assert!(
        text.contains("HTTP 307") && text.contains("http://proxy.example"),
        "{text}"
    );
}

#[test]
fn a_refresh_already_being_processed_is_no_refusal() {
    let in_progress = ApiError::from_body(
        400,
        br#"{"error":"invalid_grant","error_description":"token request is already being processed"}"#,
    );
    assert_eq!(in_progress.kind(), ErrorKind::Transient);
    assert!(in_progress.refresh_in_progress(true));
    assert!(in_progress.refresh_in_progress(false));
    // The wording before September 2024 is the same answer for the refresh-token grant only.
    let older = ApiError::from_body(
        400,
        br#"{"error":"invalid_grant","error_description":"expired authorization code"}"#,
    );
    assert!(older.refresh_in_progress(true));
    assert!(!older.refresh_in_progress(false));
    assert_eq!(LoginFailure::from_api(&older), LoginFailure::JwtExpired);
    let refusals: [&[u8]; 3] = [
        br#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
        br#"{"error":"invalid_grant","error_description":"authentication failure"}"#,
        br#"{"error":"invalid_client","error_description":"already being processed"}"#,
    ];
    for refusal in refusals {
        let api = ApiError::from_body(400, refusal);
        assert!(!api.refresh_in_progress(true), "{api}");
    }
}
