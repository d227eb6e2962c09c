//! Mutual TLS: a valid client, another CA, no certificate, a common name posing as a SPIFFE id,
//! optional client certificates; failed handshakes logged.

use std::path::Path;

use cloudtrail_gateway::{
    auth::{ClientCertificates, certificates::CertificateEntry},
    config::Config,
};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use super::*;
use common::{
    pki::{Pki, temp_dir},
    procs::GatewayProcess,
};

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
