//! JWTs against a JWKS: by file and by URL; expiry, audience, issuer, unknown kid, tampering,
//! `alg: none`; refreshes rate-limited; a hanging or unreachable endpoint; the README's dev-jwt.sh.

use std::sync::atomic::Ordering;

use base64::Engine;
use cloudtrail_gateway::{
    auth::jwt::{JwksSource, JwtConfig},
    config::Config,
};
use jsonwebtoken::{Algorithm, Header, jwk::JwkSet};

use super::*;
use common::jwks::{
    AUDIENCE, HANG, ISSUER, JwksServer, REFUSE, SERVE, SigningKey, claims, now, write_jwks,
};
use common::pki::temp_dir;

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

pub(super) async fn jwt_status(c: &mut Client, token: &str) -> Result<(), Status> {
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
