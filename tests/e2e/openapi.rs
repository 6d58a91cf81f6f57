//! The committed OpenAPI document is what the code generates, and the service serves it.

use fundtrail_e2e::TestApp;

#[test]
fn committed_openapi_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let committed = std::fs::read_to_string(&path).expect("openapi/openapi.json is committed");
    let generated = fundtrail::api::openapi_json();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `make openapi` and commit the result"
    );
}

#[test]
fn the_service_serves_its_document_and_offline_swagger_ui() {
    let app = TestApp::spawn();
    let served = app.get(None, "/api/v1/openapi.json");
    assert_eq!(served.status, 200);
    let generated: serde_json::Value =
        serde_json::from_str(&fundtrail::api::openapi_json()).unwrap();
    assert_eq!(served.body, generated);
    for path in [
        "/api/v1/entries",
        "/api/v1/orgs/{code}/keys",
        "/api/v1/recipients/{pseudonym}/personal-data",
        "/api/v1/balances",
    ] {
        assert!(generated["paths"][path].is_object(), "{path} is documented");
    }
    let ui = app.get(None, "/docs/");
    assert_eq!(ui.status, 200);
    assert!(
        ui.body.as_str().unwrap_or("").contains("swagger"),
        "Swagger UI page"
    );
    let js = app.get(None, "/docs/swagger-ui-bundle.js");
    assert_eq!(js.status, 200, "the UI's script is vendored, not fetched");
    // The address people type, without the slash, leads to the UI too.
    let typed = app.get(None, "/docs");
    assert_eq!(typed.status, 200);
    assert!(typed.body.as_str().unwrap_or("").contains("swagger"));
}

#[test]
fn descriptions_read_as_text_not_rustdoc() {
    let doc = fundtrail::api::openapi_json();
    // Intra-doc links (`[`NewOrgRequest`]`) mean something to rustdoc, nothing to Swagger.
    assert!(!doc.contains("[`"), "a description holds a rustdoc link");
    assert!(doc.contains("Payload: `NewOrgRequest`"));
}
