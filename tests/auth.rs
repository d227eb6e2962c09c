//! Authentication and authorization end to end over real sockets: static tokens (every role against
//! every RPC), JWTs against a JWKS (file and URL; expiry, audience, issuer, unknown kid, tampering,
//! `alg: none`), mTLS (valid client, another CA, no certificate), open health/reflection, the
//! principal recorded by the embedded CloudTrail, secure-by-default start-up, and no secret in logs.
//! Keys and certificates are generated here; none are checked in.

mod common;

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::Engine;
use cloudtrail_gateway::{
    auth::{
        AuthConfig, ClientCertificates,
        certificates::CertificateEntry,
        jwt::{JwksSource, JwtConfig},
        policy::RoleEntry,
    },
    config::Config,
    operation::Operation,
    pb::{self, LookupAttributeKey},
};
use common::{
    Client, TestGateway, create_request,
    pki::{Pki, temp_dir},
    procs::GatewayProcess,
    sha256_hex, tag, token_entry, trail_arn,
};
use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{Jwk, JwkSet},
};
use rcgen::KeyPair;
use tonic::{
    Code, Request, Status,
    transport::{Certificate, ClientTlsConfig, Identity},
};

const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "cloudtrail-gateway";

fn authorized<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("header value");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Calls one RPC with a well-formed request; only authorization decides whether it may run.
async fn call(c: &mut Client, rpc: &str, token: Option<&str>) -> Result<(), Status> {
    let arn = trail_arn("us-east-1", "authz-trail");
    macro_rules! send {
        ($method:ident, $message:expr) => {
            c.$method(authorized($message, token)).await.map(|_| ())
        };
    }
    match rpc {
        "AddTags" => send!(
            add_tags,
            pb::AddTagsRequest {
                resource_id: arn,
                tags_list: vec![tag("k", None)],
                request_id: String::new(),
            }
        ),
        "CreateTrail" => send!(create_trail, create_request("authz-created")),
        "DeleteTrail" => send!(
            delete_trail,
            pb::DeleteTrailRequest {
                name: "authz-trail".into(),
                request_id: String::new(),
            }
        ),
        "DescribeTrails" => send!(describe_trails, pb::DescribeTrailsRequest::default()),
        "GetEventSelectors" => send!(
            get_event_selectors,
            pb::GetEventSelectorsRequest {
                trail_name: "authz-trail".into()
            }
        ),
        "GetTrailStatus" => send!(
            get_trail_status,
            pb::GetTrailStatusRequest {
                name: "authz-trail".into()
            }
        ),
        "ListPublicKeys" => send!(list_public_keys, pb::ListPublicKeysRequest::default()),
        "ListTags" => send!(
            list_tags,
            pb::ListTagsRequest {
                resource_id_list: vec![arn],
                ..Default::default()
            }
        ),
        "LookupEvents" => send!(lookup_events, pb::LookupEventsRequest::default()),
        "PutEventSelectors" => send!(
            put_event_selectors,
            pb::PutEventSelectorsRequest {
                trail_name: "authz-trail".into(),
                event_selectors: vec![pb::EventSelector::default()],
                ..Default::default()
            }
        ),
        "RemoveTags" => send!(
            remove_tags,
            pb::RemoveTagsRequest {
                resource_id: arn,
                tags_list: vec![tag("k", None)],
                request_id: String::new(),
            }
        ),
        "StartLogging" => send!(
            start_logging,
            pb::StartLoggingRequest {
                name: "authz-trail".into(),
                request_id: String::new(),
            }
        ),
        "StopLogging" => send!(
            stop_logging,
            pb::StopLoggingRequest {
                name: "authz-trail".into(),
                request_id: String::new(),
            }
        ),
        "UpdateTrail" => send!(
            update_trail,
            pb::UpdateTrailRequest {
                name: "authz-trail".into(),
                ..Default::default()
            }
        ),
        "GetTrail" => send!(
            get_trail,
            pb::GetTrailRequest {
                name: "authz-trail".into()
            }
        ),
        "ListTrails" => send!(list_trails, pb::ListTrailsRequest::default()),
        "GetInsightSelectors" => send!(
            get_insight_selectors,
            pb::GetInsightSelectorsRequest {
                trail_name: "authz-trail".into()
            }
        ),
        "PutInsightSelectors" => send!(
            put_insight_selectors,
            pb::PutInsightSelectorsRequest {
                trail_name: "authz-trail".into(),
                ..Default::default()
            }
        ),
        "ApplyTrail" => send!(
            apply_trail,
            pb::ApplyTrailRequest {
                trail: Some(create_request("authz-trail")),
                ..Default::default()
            }
        ),
        // Not following, so the stream ends by itself; the call's answer is what is checked.
        "StreamEvents" => send!(stream_events, pb::StreamEventsRequest::default()),
        other => panic!("unknown RPC {other}"),
    }
}

async fn gateway_with(auth: AuthConfig) -> TestGateway {
    let config = Config {
        auth,
        ..common::test_config()
    };
    TestGateway::start_with(config, common::test_local()).await
}

fn token_config() -> AuthConfig {
    let mut roles = BTreeMap::new();
    roles.insert(
        "auditor".to_owned(),
        RoleEntry::Rpcs(vec!["LookupEvents".to_owned(), "GetTrailStatus".to_owned()]),
    );
    AuthConfig {
        tokens: vec![
            token_entry("reader-bot", "reader-token", &["reader"]),
            token_entry("operator-bot", "operator-token", &["operator"]),
            token_entry("admin-bot", "admin-token", &["admin"]),
            token_entry("auditor-bot", "auditor-token", &["auditor"]),
            token_entry("nobody-bot", "nobody-token", &[]),
        ],
        roles,
        open_health: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn every_role_against_every_rpc() {
    let gw = gateway_with(token_config()).await;
    let mut c = gw.client.clone();
    // The trail the RPCs name exists, so allowed calls succeed where the role permits.
    c.create_trail(authorized(
        create_request("authz-trail"),
        Some("admin-token"),
    ))
    .await
    .expect("setup");

    let reader = [
        "DescribeTrails",
        "GetTrail",
        "ListTrails",
        "GetTrailStatus",
        "GetEventSelectors",
        "GetInsightSelectors",
        "ListTags",
        "ListPublicKeys",
        "LookupEvents",
        "StreamEvents",
    ];
    let operator_extra = [
        "StartLogging",
        "StopLogging",
        "AddTags",
        "RemoveTags",
        "PutEventSelectors",
        "PutInsightSelectors",
        "UpdateTrail",
        "CreateTrail",
        "ApplyTrail",
    ];
    let all_rpcs: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
    let table: [(&str, &str, Vec<&str>); 5] = [
        ("reader-bot", "reader-token", reader.to_vec()),
        (
            "operator-bot",
            "operator-token",
            reader.iter().chain(&operator_extra).copied().collect(),
        ),
        (
            "auditor-bot",
            "auditor-token",
            vec!["LookupEvents", "GetTrailStatus"],
        ),
        ("nobody-bot", "nobody-token", vec![]),
        ("admin-bot", "admin-token", all_rpcs.clone()), // last: its DeleteTrail removes the trail
    ];
    let mut checked = 0;
    for (principal, token, allowed) in &table {
        for &rpc in &all_rpcs {
            let result = call(&mut c, rpc, Some(token)).await;
            if allowed.contains(&rpc) {
                // Allowed calls run (CreateTrail may find its name taken on a second run: still ran).
                if let Err(status) = &result {
                    assert!(
                        !matches!(
                            status.code(),
                            Code::PermissionDenied | Code::Unauthenticated
                        ),
                        "{principal} {rpc}: {status:?}"
                    );
                }
            } else {
                let status = result.expect_err("must be refused");
                assert_eq!(
                    status.code(),
                    Code::PermissionDenied,
                    "{principal} {rpc}: {status:?}"
                );
                assert!(
                    status.message().contains(rpc) && status.message().contains(principal),
                    "{status:?}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, Operation::ALL.len() * table.len());
}

#[tokio::test]
async fn authentication_comes_before_validation_and_nothing_reaches_cloudtrail() {
    let gw = gateway_with(token_config()).await;
    let mut c = gw.client.clone();
    // An invalid request from a caller who may not call the RPC: PERMISSION_DENIED, not INVALID_ARGUMENT.
    let status = c
        .delete_trail(authorized(
            pb::DeleteTrailRequest {
                name: "x".into(),
                request_id: String::new(),
            },
            Some("reader-token"),
        ))
        .await
        .expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied);
    for token in [None, Some("wrong-token"), Some("")] {
        let status = c
            .create_trail(authorized(create_request("sneaky"), token))
            .await
            .expect_err("unauthenticated");
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{token:?}: {status:?}"
        );
        let challenge = status
            .metadata()
            .get("www-authenticate")
            .expect("challenge")
            .to_str()
            .unwrap();
        assert!(
            challenge.starts_with("Bearer realm=\"cloudtrail-gateway\""),
            "{challenge}"
        );
        assert!(!status.message().contains("wrong-token"));
    }
    // No refused call was recorded by the embedded CloudTrail.
    let events = c
        .lookup_events(authorized(
            pb::LookupEventsRequest::default(),
            Some("admin-token"),
        ))
        .await
        .expect("lookup")
        .into_inner()
        .events;
    // The gateway's own health probe is recorded too; nothing else may be.
    let events: Vec<_> = events
        .into_iter()
        .filter(|e| e.username != common::PROBE)
        .collect();
    assert!(
        events.is_empty(),
        "{:?}",
        events.iter().map(|e| &e.event_name).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_principal_is_the_username_of_recorded_events() {
    let gw = gateway_with(token_config()).await;
    let mut c = gw.client.clone();
    c.create_trail(authorized(
        create_request("recorded"),
        Some("operator-token"),
    ))
    .await
    .expect("create");
    let request = pb::LookupEventsRequest {
        lookup_attributes: vec![pb::LookupAttribute {
            attribute_key: LookupAttributeKey::Username as i32,
            attribute_value: "operator-bot".into(),
        }],
        ..Default::default()
    };
    let events = c
        .lookup_events(authorized(request, Some("reader-token")))
        .await
        .expect("lookup")
        .into_inner()
        .events;
    assert_eq!(
        events
            .iter()
            .map(|e| e.event_name.as_str())
            .collect::<Vec<_>>(),
        ["CreateTrail"]
    );
    let record: serde_json::Value =
        serde_json::from_str(&events[0].cloud_trail_event).expect("JSON");
    assert_eq!(record["userIdentity"]["userName"], "operator-bot");
}

#[tokio::test]
async fn health_and_reflection_open_or_closed_by_configuration() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let open = gateway_with(token_config()).await;
    let mut health = HealthClient::new(common::channel(open.addr).await);
    health
        .check(HealthCheckRequest::default())
        .await
        .expect("open health");

    let closed = gateway_with(AuthConfig {
        open_health: false,
        ..token_config()
    })
    .await;
    let mut health = HealthClient::new(common::channel(closed.addr).await);
    let status = health
        .check(HealthCheckRequest::default())
        .await
        .expect_err("closed health");
    assert_eq!(status.code(), Code::Unauthenticated);
    health
        .check(authorized(
            HealthCheckRequest::default(),
            Some("nobody-token"),
        ))
        .await
        .expect("any principal");
}

// ---- JWT ----

struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl SigningKey {
    fn generate(kid: &str, alg: Algorithm) -> SigningKey {
        let (key, encoding) = match alg {
            Algorithm::RS256 => {
                let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
                let pem = key.serialize_pem();
                (
                    key,
                    EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA PEM"),
                )
            }
            Algorithm::ES256 => {
                let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key");
                let pem = key.serialize_pem();
                (
                    key,
                    EncodingKey::from_ec_pem(pem.as_bytes()).expect("EC PEM"),
                )
            }
            other => panic!("no test key for {other:?}"),
        };
        drop(key);
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("JWK");
        jwk.common.key_id = Some(kid.into());
        SigningKey {
            kid: kid.into(),
            alg,
            encoding,
            jwk,
        }
    }

    fn sign(&self, claims: serde_json::Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("sign")
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn claims(sub: &str, roles: &[&str]) -> serde_json::Value {
    serde_json::json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "roles": roles, "iat": now(), "exp": now() + 600})
}

fn write_jwks(path: &Path, keys: &[&SigningKey]) {
    let set = JwkSet {
        keys: keys.iter().map(|k| k.jwk.clone()).collect(),
    };
    std::fs::write(path, serde_json::to_vec(&set).expect("JWKS JSON")).expect("write JWKS");
}

fn jwt_config(jwks: JwksSource, min_refresh: Duration) -> AuthConfig {
    AuthConfig {
        jwt: Some(JwtConfig {
            jwks,
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            principal_claim: "sub".into(),
            roles_claim: "roles".into(),
            leeway: Duration::from_secs(5),
            refresh_interval: Duration::from_secs(600),
            min_refresh_interval: min_refresh,
            required_at_start: true,
        }),
        open_health: true,
        ..Default::default()
    }
}

async fn jwt_status(c: &mut Client, token: &str) -> Result<(), Status> {
    c.describe_trails(authorized(
        pb::DescribeTrailsRequest::default(),
        Some(token),
    ))
    .await
    .map(|_| ())
}

/// The attack: a JWT with `sub` = `cloudtrail-gateway` got the gateway's own role session, and one
/// with `sub` = `platform` was answered the token principal `platform`'s idempotent reply. Now the
/// gateway's names are nobody's, and a principal is keyed by its source.
#[tokio::test]
async fn jwt_principals_are_kept_apart_from_tokens_and_the_gateway() {
    let dir = temp_dir("jwks-apart");
    let rsa = SigningKey::generate("rsa-1", Algorithm::RS256);
    let jwks = dir.join("jwks.json");
    write_jwks(&jwks, &[&rsa]);
    let mut auth = jwt_config(JwksSource::File(jwks), Duration::ZERO);
    auth.tokens = vec![token_entry("platform", "platform-token", &["operator"])];
    let gw = gateway_with(auth).await;
    let mut c = gw.client.clone();
    for reserved in [
        "cloudtrail-gateway",
        "event-streams",
        "gateway-health-probe",
    ] {
        let status = jwt_status(&mut c, &rsa.sign(claims(reserved, &["admin"])))
            .await
            .expect_err("a reserved name");
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{reserved}: {status:?}"
        );
    }
    let create = |request_id: &str| pb::CreateTrailRequest {
        request_id: request_id.into(),
        ..common::create_request("apart-trail")
    };
    let by_token = c
        .create_trail(authorized(
            create("9f1c0d5e-2b7a-4c1e-8f3d-6a2b1c0d9e8f"),
            Some("platform-token"),
        ))
        .await
        .expect("the token principal creates");
    assert!(by_token.metadata().get("x-cloudtrail-replayed").is_none());
    let jwt = rsa.sign(claims("platform", &["operator"]));
    // The same request id from the JWT's `platform` is its own: a new call, which CloudTrail refuses.
    let by_jwt = c
        .create_trail(authorized(
            create("9f1c0d5e-2b7a-4c1e-8f3d-6a2b1c0d9e8f"),
            Some(&jwt),
        ))
        .await
        .expect_err("not the token principal's answer");
    assert_eq!(by_jwt.code(), Code::AlreadyExists, "{by_jwt:?}");
    // The token principal's own retry is still a replay.
    let again = c
        .create_trail(authorized(
            create("9f1c0d5e-2b7a-4c1e-8f3d-6a2b1c0d9e8f"),
            Some("platform-token"),
        ))
        .await
        .expect("replayed");
    assert_eq!(
        again
            .metadata()
            .get("x-cloudtrail-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
}

#[tokio::test]
async fn jwts_are_checked_against_the_jwks() {
    let dir = temp_dir("jwks-file");
    let rsa = SigningKey::generate("rsa-1", Algorithm::RS256);
    let ec = SigningKey::generate("ec-1", Algorithm::ES256);
    let jwks = dir.join("jwks.json");
    write_jwks(&jwks, &[&rsa, &ec]);
    let gw = gateway_with(jwt_config(JwksSource::File(jwks.clone()), Duration::ZERO)).await;
    let mut c = gw.client.clone();

    jwt_status(&mut c, &rsa.sign(claims("alice", &["reader"])))
        .await
        .expect("RS256");
    jwt_status(&mut c, &ec.sign(claims("bob", &["reader"])))
        .await
        .expect("ES256");
    // Roles come from the claim: a reader may not delete.
    let denied = c
        .delete_trail(authorized(
            pb::DeleteTrailRequest {
                name: "any-trail".into(),
                request_id: String::new(),
            },
            Some(&rsa.sign(claims("alice", &["reader"]))),
        ))
        .await
        .expect_err("reader");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains("alice"));
    // Space-separated roles (OAuth scope style) work too.
    let scoped = rsa.sign(serde_json::json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "carol", "roles": "reader operator", "exp": now() + 60}));
    let ran = c
        .start_logging(authorized(
            pb::StartLoggingRequest {
                name: "no-such-trail".into(),
                request_id: String::new(),
            },
            Some(&scoped),
        ))
        .await
        .expect_err("the trail does not exist");
    assert_eq!(
        ran.code(),
        Code::NotFound,
        "operator may StartLogging: {ran:?}"
    );

    let expect_refused = |result: Result<(), Status>, what: &str| {
        let status = result.expect_err(what);
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
        status
    };
    let mut expired = claims("alice", &["reader"]);
    expired["exp"] = (now() - 3600).into();
    let status = expect_refused(jwt_status(&mut c, &rsa.sign(expired)).await, "expired");
    let challenge = status
        .metadata()
        .get("www-authenticate")
        .expect("challenge")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("expired"), "{challenge}");

    let mut future = claims("alice", &["reader"]);
    future["nbf"] = (now() + 3600).into();
    expect_refused(jwt_status(&mut c, &rsa.sign(future)).await, "not yet valid");
    let mut wrong_aud = claims("alice", &["reader"]);
    wrong_aud["aud"] = "someone-else".into();
    expect_refused(jwt_status(&mut c, &rsa.sign(wrong_aud)).await, "wrong aud");
    let mut wrong_iss = claims("alice", &["reader"]);
    wrong_iss["iss"] = "https://evil.example".into();
    expect_refused(jwt_status(&mut c, &rsa.sign(wrong_iss)).await, "wrong iss");
    let mut no_sub = claims("alice", &["reader"]);
    no_sub.as_object_mut().unwrap().remove("sub");
    expect_refused(jwt_status(&mut c, &rsa.sign(no_sub)).await, "no principal");

    // Tampered: the payload changed (admin role), the signature kept.
    let genuine = rsa.sign(claims("alice", &["reader"]));
    let parts: Vec<&str> = genuine.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let forged_payload = b64.encode(claims("alice", &["admin"]).to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    expect_refused(jwt_status(&mut c, &tampered).await, "tampered");
    // alg: none, unsigned.
    let none_header = b64.encode(r#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#);
    let unsigned = format!(
        "{none_header}.{}.",
        b64.encode(claims("alice", &["admin"]).to_string())
    );
    expect_refused(jwt_status(&mut c, &unsigned).await, "alg none");
    // An RSA key's kid with an ES256 header (algorithm confusion).
    let confused = {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("rsa-1".into());
        jsonwebtoken::encode(&header, &claims("alice", &["admin"]), &ec.encoding).expect("sign")
    };
    expect_refused(jwt_status(&mut c, &confused).await, "algorithm confusion");

    // Unknown kid: refused, until the JWKS holds it (refreshed on the unknown kid).
    let rotated = SigningKey::generate("rsa-2", Algorithm::RS256);
    let token = rotated.sign(claims("dave", &["reader"]));
    expect_refused(jwt_status(&mut c, &token).await, "unknown kid");
    write_jwks(&jwks, &[&rsa, &ec, &rotated]);
    jwt_status(&mut c, &token)
        .await
        .expect("kid known after refresh");
}

#[tokio::test]
async fn unknown_kid_refreshes_are_rate_limited() {
    let dir = temp_dir("jwks-limited");
    let first = SigningKey::generate("k1", Algorithm::ES256);
    let second = SigningKey::generate("k2", Algorithm::ES256);
    let jwks = dir.join("jwks.json");
    write_jwks(&jwks, &[&first]);
    let gw = gateway_with(jwt_config(
        JwksSource::File(jwks.clone()),
        Duration::from_secs(3600),
    ))
    .await;
    let mut c = gw.client.clone();
    jwt_status(&mut c, &first.sign(claims("erin", &["reader"])))
        .await
        .expect("serving, set loaded");
    write_jwks(&jwks, &[&first, &second]);
    // The set was fetched moments ago at start: no refresh for an unknown kid within the hour.
    let status = jwt_status(&mut c, &second.sign(claims("erin", &["reader"])))
        .await
        .expect_err("not refreshed");
    assert_eq!(status.code(), Code::Unauthenticated);
    jwt_status(&mut c, &first.sign(claims("erin", &["reader"])))
        .await
        .expect("known key");
}

#[tokio::test]
async fn jwks_from_an_url() {
    let key = SigningKey::generate("url-1", Algorithm::RS256);
    let body = serde_json::to_string(&JwkSet {
        keys: vec![key.jwk.clone()],
    })
    .expect("JSON");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    let url = format!("http://127.0.0.1:{port}/.well-known/jwks.json");
    let gw = gateway_with(jwt_config(JwksSource::Url(url), Duration::ZERO)).await;
    let mut c = gw.client.clone();
    jwt_status(&mut c, &key.sign(claims("frank", &["reader"])))
        .await
        .expect("key from URL");
    server.abort();
}

// ---- mTLS ----

async fn tls_client(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<Client, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(Client::new(channel))
}

#[tokio::test]
async fn mutual_tls_identities() {
    let dir = temp_dir("mtls");
    let pki = Pki::new("gateway test CA");
    let spiffe = "spiffe://example.test/ns/platform/sa/control-plane";
    let (client_cert, client_key) = pki.leaf("control-plane", &[], &[spiffe]);
    let (cn_cert, cn_key) = pki.leaf("batch-job", &[], &[]);
    let stranger_pki = Pki::new("some other CA");
    let (stranger_cert, stranger_key) = stranger_pki.leaf("intruder", &[], &[]);
    let auth = AuthConfig {
        tls: Some(pki.server_tls(&dir, ClientCertificates::Required)),
        certificates: vec![CertificateEntry {
            principal: spiffe.into(),
            roles: vec!["operator".into()],
            accounts: Vec::new(),
            regions: Vec::new(),
        }],
        open_health: true,
        certificate_cn_principal: true,
        ..Default::default()
    };
    let gw = gateway_with(auth).await;

    // A valid client certificate: its SPIFFE id is the principal, with the configured roles.
    let mut control_plane = tls_client(gw.addr, &pki.ca_pem, Some((&client_cert, &client_key)))
        .await
        .expect("mTLS");
    control_plane
        .create_trail(create_request("mtls-trail"))
        .await
        .expect("operator may create");
    let denied = control_plane
        .delete_trail(pb::DeleteTrailRequest {
            name: "mtls-trail".into(),
            request_id: String::new(),
        })
        .await
        .expect_err("operator may not delete");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains(spiffe));
    // A valid certificate without a SPIFFE id is known by its CN; with no roles configured it may do nothing.
    let mut batch = tls_client(gw.addr, &pki.ca_pem, Some((&cn_cert, &cn_key)))
        .await
        .expect("mTLS");
    let status = batch
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect_err("no roles");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("batch-job"));

    // A certificate from another CA, or none at all: the handshake fails, no RPC runs.
    for identity in [Some((stranger_cert.as_str(), stranger_key.as_str())), None] {
        let refused = match tls_client(gw.addr, &pki.ca_pem, identity).await {
            Err(_) => true,
            Ok(mut client) => client
                .describe_trails(pb::DescribeTrailsRequest::default())
                .await
                .is_err(),
        };
        assert!(refused, "a client without a valid certificate got through");
    }
    // Plaintext to a TLS port fails as well.
    let mut plain = gw.client.clone();
    assert!(
        plain
            .describe_trails(pb::DescribeTrailsRequest::default())
            .await
            .is_err()
    );
}

/// The attack: a certificate the CA signed with CN = the admin's SPIFFE id (and no URI SAN) deleted a
/// trail as admin. Now it names nobody, even with common names allowed as principals; a URI SAN
/// whose scheme is written in capitals is still the certificate's SPIFFE id.
#[tokio::test]
async fn a_common_name_cannot_claim_a_spiffe_id() {
    let dir = temp_dir("forged-cn");
    let pki = Pki::new("gateway test CA");
    let admin = "spiffe://example.test/ns/platform/sa/admin";
    let (forged_cert, forged_key) = pki.leaf(admin, &[], &[]);
    let (upper_cert, upper_key) = pki.leaf(
        "someone",
        &[],
        &["SPIFFE://example.test/ns/platform/sa/admin"],
    );
    let local = common::test_local();
    let config = Config {
        auth: AuthConfig {
            tls: Some(pki.server_tls(&dir, ClientCertificates::Required)),
            certificates: vec![CertificateEntry {
                principal: admin.into(),
                roles: vec!["admin".into()],
                accounts: Vec::new(),
                regions: Vec::new(),
            }],
            open_health: true,
            certificate_cn_principal: true,
            ..Default::default()
        },
        ..common::test_config()
    };
    let gw = TestGateway::start_with(config, local.clone()).await;
    let mut forged = tls_client(gw.addr, &pki.ca_pem, Some((&forged_cert, &forged_key)))
        .await
        .expect("the handshake itself succeeds: the CA signed it");
    let status = forged
        .delete_trail(pb::DeleteTrailRequest {
            name: "any-trail".into(),
            request_id: String::new(),
        })
        .await
        .expect_err("a CN is not a SPIFFE id");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let mut real = tls_client(gw.addr, &pki.ca_pem, Some((&upper_cert, &upper_key)))
        .await
        .expect("mTLS");
    real.create_trail(create_request("upper-case-scheme"))
        .await
        .expect("the SAN's SPIFFE id is admin");
    let mut admin_client = real.clone();
    let events = common::lookup(&mut admin_client, LookupAttributeKey::Username, admin).await;
    assert_eq!(
        events
            .iter()
            .map(|e| e.event_name.as_str())
            .collect::<Vec<_>>(),
        ["CreateTrail"],
        "only the real admin's call is recorded under the admin's name"
    );
}

/// With client certificates optional, token callers and health probes connect without one, and a
/// certificate that is presented still names its holder.
#[tokio::test]
async fn client_certificates_can_be_optional() {
    let dir = temp_dir("optional-mtls");
    let pki = Pki::new("gateway test CA");
    let spiffe = "spiffe://example.test/ns/a/sa/reader";
    let (client_cert, client_key) = pki.leaf("reader", &[], &[spiffe]);
    let auth = AuthConfig {
        tls: Some(pki.server_tls(&dir, ClientCertificates::Optional)),
        certificates: vec![CertificateEntry {
            principal: spiffe.into(),
            roles: vec!["reader".into()],
            accounts: Vec::new(),
            regions: Vec::new(),
        }],
        tokens: vec![token_entry("ci", "ci-token", &["reader"])],
        open_health: true,
        ..Default::default()
    };
    let gw = gateway_with(auth).await;
    let mut without_cert = tls_client(gw.addr, &pki.ca_pem, None)
        .await
        .expect("no certificate needed to connect");
    without_cert
        .describe_trails(authorized(
            pb::DescribeTrailsRequest::default(),
            Some("ci-token"),
        ))
        .await
        .expect("a token caller without a certificate");
    let status = without_cert
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect_err("neither a certificate nor a token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{}", gw.addr))
        .expect("endpoint")
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&pki.ca_pem))
                .domain_name("localhost"),
        )
        .expect("tls")
        .connect()
        .await
        .expect("connect");
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health without a certificate");
    let mut with_cert = tls_client(gw.addr, &pki.ca_pem, Some((&client_cert, &client_key)))
        .await
        .expect("mTLS");
    with_cert
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("the certificate's SPIFFE id is a reader");
}

/// A JWKS endpoint answering as told: serve the set, hang, or refuse; it counts the requests.
struct JwksServer {
    url: String,
    mode: Arc<AtomicU8>,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

const SERVE: u8 = 0;
const HANG: u8 = 1;
const REFUSE: u8 = 2;

impl JwksServer {
    async fn start(keys: &[&SigningKey], mode: u8) -> JwksServer {
        let body = serde_json::to_string(&JwkSet {
            keys: keys.iter().map(|k| k.jwk.clone()).collect(),
        })
        .expect("JSON");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mode = Arc::new(AtomicU8::new(mode));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (m, f) = (mode.clone(), fetches.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (m, f, body) = (m.clone(), f.clone(), body.clone());
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    f.fetch_add(1, Ordering::SeqCst);
                    match m.load(Ordering::SeqCst) {
                        SERVE => {
                            let response = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = socket.write_all(response.as_bytes()).await;
                        }
                        HANG => tokio::time::sleep(Duration::from_secs(3600)).await,
                        _ => {} // closes without an answer
                    }
                });
            }
        });
        JwksServer {
            url: format!("http://127.0.0.1:{port}/jwks.json"),
            mode,
            fetches,
            task,
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The attack: with the JWKS endpoint hanging, every queued unknown-`kid` call made its own 10 s
/// fetch while holding a concurrency permit, and valid callers and health were refused for > 70 s.
/// Now one fetch is made for all of them, they hold no permit, and everyone else goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_jwks_endpoint_stalls_nobody_else() {
    let known = SigningKey::generate("known", Algorithm::ES256);
    let unknown = SigningKey::generate("rotated-in", Algorithm::ES256);
    let jwks = JwksServer::start(&[&known], SERVE).await;
    let config = Config {
        auth: jwt_config(JwksSource::Url(jwks.url.clone()), Duration::from_secs(1)),
        server: cloudtrail_gateway::config::ServerConfig {
            max_concurrent_requests: 4,
            ..common::test_config().server
        },
        ..common::test_config()
    };
    let gw = TestGateway::start_with(config, common::test_local()).await;
    let valid = known.sign(claims("alice", &["reader"]));
    let mut c = gw.client.clone();
    jwt_status(&mut c, &valid)
        .await
        .expect("started, keys loaded");
    jwks.mode.store(HANG, Ordering::SeqCst);
    // Past the minimum interval since the fetch at start: an unknown kid may refresh again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = jwks.fetches.load(Ordering::SeqCst);
    let mut waiting = Vec::new();
    for _ in 0..30 {
        let mut c = gw.client.clone();
        let token = unknown.sign(claims("mallory", &["admin"]));
        waiting.push(tokio::spawn(async move {
            let mut request = authorized(pb::DescribeTrailsRequest::default(), Some(&token));
            request.set_timeout(Duration::from_secs(2));
            c.describe_trails(request).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..10 {
        let started = std::time::Instant::now();
        let mut c = gw.client.clone();
        jwt_status(&mut c, &valid)
            .await
            .expect("a valid caller is served");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a valid caller waited {:?}",
            started.elapsed()
        );
    }
    let (code, _) = gw.http_get("/healthz").await;
    assert_eq!(code, 200);
    for call in waiting {
        let status = call.await.expect("task").expect_err("unknown key");
        assert!(
            matches!(
                status.code(),
                Code::Unauthenticated | Code::DeadlineExceeded | Code::Cancelled
            ),
            "{status:?}"
        );
    }
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst) - before,
        1,
        "one fetch for all the unknown-kid callers"
    );
}

/// An identity provider that does not answer at start does not crash the gateway: it starts not
/// ready, keeps fetching, and is ready once the keys are loaded.
#[tokio::test]
async fn an_unreachable_jwks_at_start_means_not_ready_until_loaded() {
    let key = SigningKey::generate("late", Algorithm::ES256);
    let jwks = JwksServer::start(&[&key], REFUSE).await;
    let mut auth = jwt_config(JwksSource::Url(jwks.url.clone()), Duration::from_secs(1));
    if let Some(jwt) = auth.jwt.as_mut() {
        jwt.required_at_start = false;
    }
    let gw = gateway_with(auth).await;
    let (code, body) = gw.http_get("/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("JWKS"), "{body}");
    jwks.mode.store(SERVE, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = gw.http_get("/readyz").await;
        if code == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut c = gw.client.clone();
    jwt_status(&mut c, &key.sign(claims("late-user", &["reader"])))
        .await
        .expect("keys loaded");
}

// ---- start-up and logs ----

#[test]
fn no_auth_on_a_public_address_refuses_to_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cloudtrail-gateway"))
        .args(["--listen", "0.0.0.0:0"])
        .env_remove("CLOUDTRAIL_GATEWAY_INSECURE_NO_AUTH")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid setting `insecure_no_auth`"),
        "{stderr}"
    );
}

#[tokio::test]
async fn tokens_never_reach_the_logs() {
    let dir = temp_dir("logs");
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[[tokens]]\nprincipal = \"logged-bot\"\nsha256 = \"{}\"\nroles = [\"reader\"]\n",
            sha256_hex("super-secret-token-value")
        ),
    )
    .expect("config");
    let gw = GatewayProcess::start(&["--config", config.to_str().expect("path")], "debug").await;
    let mut c = gw.client().await;
    jwt_status(&mut c, "super-secret-token-value")
        .await
        .expect("valid token");
    for bad in [
        "wrong-secret-guess",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2VjcmV0LXNpZ25hdHVyZQ",
    ] {
        assert_eq!(
            jwt_status(&mut c, bad).await.expect_err("bad").code(),
            Code::Unauthenticated
        );
    }
    let log = gw.log();
    assert!(
        log.contains("unauthenticated call refused"),
        "the refusals are logged:\n{log}"
    );
    for secret in [
        "super-secret-token-value",
        "wrong-secret-guess",
        "c2VjcmV0LXNpZ25hdHVyZQ",
    ] {
        assert!(!log.contains(secret), "{secret} appears in the log");
    }
}

/// A refused TLS handshake gives the caller no gRPC status at all, so the gateway logs it.
#[tokio::test]
async fn failed_tls_handshakes_are_logged() {
    let dir = temp_dir("handshake-log");
    let pki = Pki::new("gateway test CA");
    let stranger = Pki::new("some other CA");
    let (intruder_cert, intruder_key) = stranger.leaf("intruder", &[], &[]);
    let tls = pki.server_tls(&dir, ClientCertificates::Required);
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let (cert, key) = (path(&tls.cert), path(&tls.key));
    let ca = tls.client_ca.as_deref().map(path).unwrap_or_default();
    let gw = GatewayProcess::start_tls(
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca,
            "--tls-client-certificates",
            "required",
        ],
        "info",
    )
    .await;
    let refused =
        match tls_client(gw.addr, &pki.ca_pem, Some((&intruder_cert, &intruder_key))).await {
            Err(_) => true,
            Ok(mut c) => c
                .describe_trails(pb::DescribeTrailsRequest::default())
                .await
                .is_err(),
        };
    assert!(refused);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = gw.log();
    assert!(
        log.lines()
            .any(|l| l.contains("TLS handshake failed") && l.contains("127.0.0.1")),
        "{log}"
    );
}

/// The attack: a custom role granted ApplyTrail but not StopLogging or PutEventSelectors stopped a
/// trail's logging and changed its selectors through ApplyTrail, and `validate_only` showed logging,
/// selectors and tags to roles without the Get grants. Now ApplyTrail is authorized as each call it
/// makes, every write before the first, and the refusal names the missing grant.
#[tokio::test]
async fn apply_trail_needs_the_grants_of_the_calls_it_makes() {
    let mut config = token_config();
    config.roles.insert(
        "applier".to_owned(),
        RoleEntry::Rpcs(
            [
                "ApplyTrail",
                "GetTrail",
                "GetTrailStatus",
                "GetEventSelectors",
                "StartLogging",
            ]
            .map(str::to_owned)
            .to_vec(),
        ),
    );
    config.roles.insert(
        "blind".to_owned(),
        RoleEntry::Rpcs(vec!["ApplyTrail".to_owned()]),
    );
    config
        .tokens
        .push(token_entry("applier-bot", "applier-token", &["applier"]));
    config
        .tokens
        .push(token_entry("blind-bot", "blind-token", &["blind"]));
    let gw = gateway_with(config).await;
    let mut c = gw.client.clone();
    c.create_trail(authorized(create_request("guarded"), Some("admin-token")))
        .await
        .expect("created");
    c.start_logging(authorized(
        pb::StartLoggingRequest {
            name: "guarded".into(),
            ..Default::default()
        },
        Some("admin-token"),
    ))
    .await
    .expect("logging");
    let apply =
        |logging: Option<bool>, selectors: bool, validate_only: bool| pb::ApplyTrailRequest {
            trail: Some(create_request("guarded")),
            logging,
            event_selectors: selectors.then(|| pb::EventSelectorList {
                selectors: vec![pb::EventSelector {
                    read_write_type: pb::ReadWriteType::WriteOnly.into(),
                    include_management_events: Some(true),
                    ..Default::default()
                }],
            }),
            validate_only,
            ..Default::default()
        };
    let refused = |r: Result<tonic::Response<pb::ApplyTrailResponse>, Status>, grant: &str| {
        let status = r.expect_err("refused");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert!(status.message().contains(grant), "{grant}: {status:?}");
    };
    // Stopping logging needs StopLogging; the selectors change in the same request is not made either.
    refused(
        c.apply_trail(authorized(
            apply(Some(false), true, false),
            Some("applier-token"),
        ))
        .await,
        "StopLogging",
    );
    refused(
        c.apply_trail(authorized(apply(None, true, false), Some("applier-token")))
            .await,
        "PutEventSelectors",
    );
    let status = c
        .get_trail_status(authorized(
            pb::GetTrailStatusRequest {
                name: "guarded".into(),
            },
            Some("admin-token"),
        ))
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.is_logging, Some(true), "still logging");
    let selectors = c
        .get_event_selectors(authorized(
            pb::GetEventSelectorsRequest {
                trail_name: "guarded".into(),
            },
            Some("admin-token"),
        ))
        .await
        .expect("selectors")
        .into_inner();
    assert_ne!(
        selectors.event_selectors[0].read_write_type,
        i32::from(pb::ReadWriteType::WriteOnly),
        "selectors unchanged"
    );
    // validate_only reads as the caller: without GetTrail nothing is shown.
    refused(
        c.apply_trail(authorized(
            apply(Some(false), true, true),
            Some("blind-token"),
        ))
        .await,
        "GetTrail",
    );
    // With the grants it needs, the same caller's apply goes through.
    let fine = c
        .apply_trail(authorized(
            apply(Some(true), false, false),
            Some("applier-token"),
        ))
        .await
        .expect("nothing it may not do")
        .into_inner();
    assert_eq!(fine.is_logging, Some(true));
}

/// The README's offline JWT recipe: `scripts/dev-jwt.sh` mints a key, its JWKS and a token the
/// gateway accepts with the flags the README gives.
#[tokio::test]
async fn the_dev_jwt_script_mints_what_the_gateway_accepts() {
    let dir = temp_dir("dev-jwt");
    let mint = |sub: &str, roles: &str| {
        let out =
            std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/dev-jwt.sh"))
                .args([sub, roles, "600"])
                .env("DEV_JWT_DIR", &dir)
                .output()
                .expect("run scripts/dev-jwt.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    };
    let reader = mint("dev-reader", "reader");
    let operator = mint("dev-operator", "reader operator");
    let mut auth = jwt_config(JwksSource::File(dir.join("jwks.json")), Duration::ZERO);
    if let Some(jwt) = &mut auth.jwt {
        jwt.issuer = "https://dev.local".into();
        jwt.audience = "cloudtrail-gateway".into();
    }
    let gw = gateway_with(auth).await;
    let mut c = gw.client.clone();
    jwt_status(&mut c, &reader).await.expect("a reader reads");
    let start = |token: &str| {
        authorized(
            pb::StartLoggingRequest {
                name: "nothing-here".into(),
                ..Default::default()
            },
            Some(token),
        )
    };
    let refused = c.start_logging(start(&reader)).await.expect_err("a reader");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // Space-separated roles in the script's argument become the roles claim.
    let missing = c
        .start_logging(start(&operator))
        .await
        .expect_err("no such trail");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
}
