//! Secure by default at start-up, and no secret in the logs.

use super::{jwt::jwt_status, *};
use common::{pki::temp_dir, procs::GatewayProcess};

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
