//! Building a client: where the gateway is, how to prove who calls, the defaults of every call.

use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::{Client, Grpc, RetryPolicy};

/// Why a client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("endpoint {endpoint:?}: {source}")]
    Endpoint {
        endpoint: String,
        source: tonic::transport::Error,
    },
    #[error("the token cannot be sent as a header value")]
    Token,
    #[error("connecting to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },
}

/// Settings of a [`Client`]; `Client::builder(endpoint)` starts one.
#[derive(Debug)]
pub struct ClientBuilder {
    endpoint: String,
    token: Option<String>,
    ca_pem: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    tls_domain: Option<String>,
    deadline: Duration,
    connect_timeout: Duration,
    account: Option<String>,
    region: Option<String>,
    retry: RetryPolicy,
}

impl ClientBuilder {
    pub(crate) fn new(endpoint: impl Into<String>) -> Self {
        ClientBuilder {
            endpoint: endpoint.into(),
            token: None,
            ca_pem: None,
            identity: None,
            tls_domain: None,
            deadline: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            account: None,
            region: None,
            retry: RetryPolicy::default(),
        }
    }

    /// Sent as `authorization: Bearer <token>` on every call.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// TLS with this CA (PEM) instead of the system's roots.
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// mTLS: the client's certificate chain and key (PEM).
    pub fn client_certificate(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// The name the gateway's certificate must carry, when not the endpoint's host.
    pub fn tls_domain(mut self, name: impl Into<String>) -> Self {
        self.tls_domain = Some(name.into());
        self
    }

    /// Every unary call's deadline, its retries included (default 30 s).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// How long connecting may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The account every call is for, unless `Client::at` says otherwise.
    pub fn account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// The Region every call is for, unless `Client::at` says otherwise.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// How calls are retried (`RetryPolicy::none()`: never).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Connects now: a gateway that cannot be reached is an error here.
    pub async fn connect(self) -> Result<Client, Error> {
        let endpoint = self.endpoint()?;
        let channel = endpoint.connect().await.map_err(|source| Error::Connect {
            endpoint: self.endpoint.clone(),
            source,
        })?;
        self.client(Grpc::new(channel))
    }

    /// Connects on the first call (and again whenever the connection is lost).
    pub fn connect_lazy(self) -> Result<Client, Error> {
        let channel = self.endpoint()?.connect_lazy();
        self.client(Grpc::new(channel))
    }

    fn endpoint(&self) -> Result<Endpoint, Error> {
        let invalid = |source| Error::Endpoint {
            endpoint: self.endpoint.clone(),
            source,
        };
        let mut endpoint = Endpoint::from_shared(self.endpoint.clone())
            .map_err(invalid)?
            .connect_timeout(self.connect_timeout)
            // Notices a dead peer under an idle stream instead of waiting forever.
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        let tls = self.endpoint.starts_with("https://")
            || self.ca_pem.is_some()
            || self.identity.is_some();
        if tls {
            let mut config = ClientTlsConfig::new();
            config = match &self.ca_pem {
                Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
                None => config.with_native_roots(),
            };
            if let Some((cert, key)) = &self.identity {
                config = config.identity(Identity::from_pem(cert, key));
            }
            if let Some(domain) = &self.tls_domain {
                config = config.domain_name(domain.clone());
            }
            endpoint = endpoint.tls_config(config).map_err(invalid)?;
        }
        Ok(endpoint)
    }

    fn client(self, grpc: Grpc) -> Result<Client, Error> {
        let token = match self.token {
            Some(token) => {
                let mut value: tonic::metadata::AsciiMetadataValue = format!("Bearer {token}")
                    .parse()
                    .map_err(|_| Error::Token)?;
                // Kept out of Debug output.
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Client {
            grpc,
            token,
            deadline: self.deadline,
            account: self.account,
            region: self.region,
            retry: self.retry,
        })
    }
}
