//! Child-process fixtures: moto (a CloudTrail emulator nobody here wrote) and the gateway binary
//! pointed at it. Each picks free loopback ports and is killed on drop.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::Client;

/// A free port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A child process killed (and reaped) on drop; its output goes to a log file kept for failures.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(mut command: Command, name: &str) -> Proc {
        let log = std::env::temp_dir().join(format!(
            "ctgw-{name}-{}-{}.log",
            std::process::id(),
            free_port()
        ));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        Proc { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// One plain HTTP/1.1 request to 127.0.0.1:port; returns (status, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// `moto_server` on a free port. Installed by scripts/test.sh into ./.venv; never skipped.
pub struct Moto {
    pub port: u16,
    proc: Proc,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// moto recording every request it gets (`recording`), for tests that check what was sent.
    pub fn start_recording() -> Moto {
        let file = std::env::temp_dir().join(format!(
            "moto-recording-{}-{}.jsonl",
            std::process::id(),
            free_port()
        ));
        let file = file.to_string_lossy().into_owned();
        Moto::start_with(&[
            ("MOTO_ENABLE_RECORDING", "True"),
            ("MOTO_RECORDER_FILEPATH", &file),
        ])
    }

    fn start_with(env: &[(&str, &str)]) -> Moto {
        let exe = std::env::var_os("CLOUDTRAIL_GATEWAY_TEST_MOTO")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server")
            });
        assert!(
            exe.exists(),
            "moto_server not found at {}: run scripts/test.sh, which installs it",
            exe.display()
        );
        let port = free_port();
        let mut command = Command::new(&exe);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("TZ", "UTC")
            .envs(env.iter().copied());
        let mut moto = Moto {
            port,
            proc: Proc::spawn(command, "moto"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(port, "GET", "/moto-api/data.json", &[], "")
            .map(|(s, _)| s)
            .ok()
            != Some(200)
        {
            assert!(
                !moto.proc.exited(),
                "moto exited:\n{}",
                moto.proc.log_text()
            );
            assert!(
                Instant::now() < deadline,
                "moto did not answer in 30 s:\n{}",
                moto.proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates an S3 bucket (moto checks that a trail's bucket exists).
    pub fn create_bucket(&self, name: &str) {
        let (status, body) =
            http(self.port, "PUT", &format!("/{name}"), &[], "").expect("S3 CreateBucket");
        assert_eq!(status, 200, "CreateBucket {name}: {body}");
    }

    /// Creates an S3 bucket in `account` (moto's `x-moto-account-id`).
    pub fn create_bucket_in(&self, account: &str, name: &str) {
        let (status, body) = http(
            self.port,
            "PUT",
            &format!("/{name}"),
            &[("x-moto-account-id", account)],
            "",
        )
        .expect("S3 CreateBucket");
        assert_eq!(status, 200, "CreateBucket {name} in {account}: {body}");
    }

    /// The requests moto recorded (one JSON object per line: method, url, headers, body).
    pub fn recording(&self) -> Vec<serde_json::Value> {
        let (status, body) = http(
            self.port,
            "GET",
            "/moto-api/recorder/download-recording",
            &[],
            "",
        )
        .expect("download the recording");
        assert_eq!(status, 200, "{body}");
        body.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(serde_json::Value::is_object)
            .collect()
    }

    /// Creates an SNS topic (moto checks that a trail's topic exists). moto routes by the SigV4
    /// credential scope and does not verify the signature.
    pub fn create_topic(&self, name: &str) {
        let auth = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=0";
        let (status, body) = http(
            self.port,
            "POST",
            "/",
            &[
                ("Authorization", auth),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &format!("Action=CreateTopic&Name={name}"),
        )
        .expect("SNS CreateTopic");
        assert_eq!(status, 200, "CreateTopic {name}: {body}");
    }
}

/// The gateway binary as a child process: `--upstream aws --endpoint-url <moto>`.
pub struct GatewayProcess {
    pub addr: SocketAddr,
    /// The plain-HTTP side port (/metrics, /healthz, /readyz).
    pub http_addr: SocketAddr,
    /// Everything after the listen addresses, for a restart.
    args: Vec<String>,
    log_level: String,
    proc: Proc,
}

/// The event store file of the gateway whose side port is `http_addr`.
fn store_path(http_addr: SocketAddr) -> PathBuf {
    std::env::temp_dir().join(format!(
        "gateway-store-{}-{}.db",
        std::process::id(),
        http_addr.port()
    ))
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.proc.child.kill();
        let _ = self.proc.child.wait();
        let path = store_path(self.http_addr);
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}

/// GET `path` from a side port (status, body), off the async threads.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (port, path) = (addr.port(), path.to_owned());
    tokio::task::spawn_blocking(move || http(port, "GET", &path, &[], ""))
        .await
        .expect("blocking task")
        .expect("HTTP GET")
}

impl GatewayProcess {
    /// GET `path` from the side port.
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        get(self.http_addr, path).await
    }

    /// `--upstream aws --endpoint-url <endpoint_url>` plus `extra_args`.
    pub async fn start_on(endpoint_url: &str, extra_args: &[&str]) -> GatewayProcess {
        let mut args = vec![
            "--upstream",
            "aws",
            "--region",
            "us-east-1",
            "--endpoint-url",
            endpoint_url,
        ];
        args.extend_from_slice(extra_args);
        Self::start(&args, "warn").await
    }

    /// The binary on a free loopback port with `args`, logging at `log_level`.
    pub async fn start(args: &[&str], log_level: &str) -> GatewayProcess {
        let mut all: Vec<&str> = super::UNLIMITED_ARGS.to_vec();
        all.extend_from_slice(args);
        Self::start_with_quotas(&all, log_level).await
    }

    /// As `start`, at the gateway's own quotas (none raised) unless `args` set them.
    pub async fn start_with_quotas(args: &[&str], log_level: &str) -> GatewayProcess {
        let mut gateway = Self::spawn(args, log_level);
        gateway.wait_answering().await;
        gateway
    }

    /// Kills the process (SIGKILL: connections break, nothing is drained) and starts it again on
    /// the same ports with the same arguments.
    pub async fn restart(&mut self) {
        let _ = self.proc.child.kill();
        let _ = self.proc.child.wait();
        self.respawn().await;
    }

    /// Starts the process again on the same ports after it exited (e.g. after `terminate`).
    pub async fn respawn(&mut self) {
        self.proc = Proc::spawn(
            Self::command(self.addr, self.http_addr, &self.args, &self.log_level),
            "gateway",
        );
        self.wait_answering().await;
    }

    /// As `start`, for a gateway serving TLS: waits for its plain-HTTP side port instead.
    pub async fn start_tls(args: &[&str], log_level: &str) -> GatewayProcess {
        let mut gateway = Self::spawn(args, log_level);
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = gateway.http_addr.port();
        while tokio::task::spawn_blocking(move || http(port, "GET", "/healthz", &[], ""))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|(status, _)| status)
            != Some(200)
        {
            assert!(
                !gateway.proc.exited(),
                "gateway exited:\n{}",
                gateway.proc.log_text()
            );
            assert!(Instant::now() < deadline, "gateway not up in 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gateway
    }

    fn spawn(args: &[&str], log_level: &str) -> GatewayProcess {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let http_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        GatewayProcess {
            addr,
            http_addr,
            proc: Proc::spawn(Self::command(addr, http_addr, &args, log_level), "gateway"),
            args,
            log_level: log_level.to_owned(),
        }
    }

    fn command(
        addr: SocketAddr,
        http_addr: SocketAddr,
        args: &[String],
        log_level: &str,
    ) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cloudtrail-gateway"));
        command
            .args([
                "--listen",
                &addr.to_string(),
                "--metrics-listen",
                &http_addr.to_string(),
            ])
            .args(args)
            // Static test credentials; no profile files, no instance metadata (loopback only).
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env("RUST_LOG", log_level)
            // Each gateway its own event store file (a flag in `args` overrides it).
            .env("CLOUDTRAIL_GATEWAY_STORE_PATH", store_path(http_addr));
        command
    }

    /// Waits until health answers: SERVING, or NOT_SERVING when the upstream cannot be reached.
    async fn wait_answering(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                !self.proc.exited(),
                "gateway exited:\n{}",
                self.proc.log_text()
            );
            assert!(
                Instant::now() < deadline,
                "gateway not answering in 30 s:\n{}",
                self.proc.log_text()
            );
            if let Ok(channel) =
                tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
                    .expect("endpoint")
                    .connect()
                    .await
                && HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The health status the gateway reports now.
    pub async fn health(&self) -> ServingStatus {
        let channel = super::channel(self.addr).await;
        let status = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map(|r| r.into_inner().status)
            .unwrap_or(ServingStatus::Unknown as i32);
        ServingStatus::try_from(status).unwrap_or(ServingStatus::Unknown)
    }

    /// Waits (up to 10 s) for the wanted health status.
    pub async fn wait_health(&self, wanted: ServingStatus) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.health().await != wanted {
            assert!(Instant::now() < deadline, "health never became {wanted:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits (without blocking the runtime: clients must see the GOAWAY) for the
    /// exit status, up to `limit`.
    pub async fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.proc.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.proc.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Everything the process printed so far.
    pub fn log(&self) -> String {
        self.proc.log_text()
    }

    pub async fn client(&self) -> Client {
        super::connect(self.addr).await
    }
}

/// `redis-server` on a free port, no persistence. Installed by scripts/test.sh; never skipped.
pub struct Redis {
    pub port: u16,
    /// With TLS: the CA (PEM) its certificate chains to; `port` is then the TLS port and
    /// `plain_port` a plaintext one for the fixture's own commands.
    pub ca: Option<Vec<u8>>,
    plain_port: u16,
    password: Option<String>,
    proc: Option<Proc>,
}

impl Redis {
    pub fn start() -> Redis {
        Self::start_on(free_port())
    }

    /// On a given port (to bring a stopped Redis back where the gateways expect it).
    pub fn start_on(port: u16) -> Redis {
        Self::spawn(port, port, &[], None, None)
    }

    /// With a password and TLS only on `port` (a certificate for localhost from a fresh CA).
    pub fn start_tls(password: &str) -> Redis {
        let dir = std::env::temp_dir().join(format!("ctgw-redis-tls-{}", free_port()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &issuer).expect("server cert");
        let files = [
            ("redis.pem", cert.pem()),
            ("redis.key", key.serialize_pem()),
            ("ca.pem", ca_cert.pem()),
        ];
        for (name, pem) in &files {
            std::fs::write(dir.join(name), pem).expect("write");
        }
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let tls_port = free_port();
        let tls_args = [
            "--tls-port".to_owned(),
            tls_port.to_string(),
            "--tls-cert-file".to_owned(),
            path("redis.pem"),
            "--tls-key-file".to_owned(),
            path("redis.key"),
            "--tls-ca-cert-file".to_owned(),
            path("ca.pem"),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
            "--requirepass".to_owned(),
            password.to_owned(),
        ];
        let mut redis = Self::spawn(
            free_port(),
            tls_port,
            &tls_args,
            Some(password),
            Some(ca_cert.pem().into_bytes()),
        );
        redis.port = tls_port;
        redis
    }

    fn spawn(
        plain_port: u16,
        port: u16,
        extra: &[String],
        password: Option<&str>,
        ca: Option<Vec<u8>>,
    ) -> Redis {
        let exe = std::env::var_os("CLOUDTRAIL_GATEWAY_TEST_REDIS")
            .unwrap_or_else(|| "redis-server".into());
        let mut command = Command::new(&exe);
        command
            .args([
                "--port",
                &plain_port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(extra);
        let mut proc = Proc::spawn(command, "redis");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(
                !proc.exited(),
                "redis-server ({exe:?}) exited; run scripts/test.sh, which installs it:\n{}",
                proc.log_text()
            );
            let mut redis = Redis {
                port,
                ca: ca.clone(),
                plain_port,
                password: password.map(str::to_owned),
                proc: None,
            };
            if redis
                .try_command(&["PING"])
                .is_ok_and(|r| r.contains("PONG"))
            {
                redis.proc = Some(proc);
                return redis;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer in 20 s:\n{}",
                proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command over the plaintext port (authenticated when there is a password); the raw reply.
    pub fn command(&self, args: &[&str]) -> String {
        self.try_command(args)
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    fn try_command(&self, args: &[&str]) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.plain_port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut send = |args: &[&str]| -> std::io::Result<String> {
            let mut request = format!("*{}\r\n", args.len());
            for a in args {
                request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
            }
            s.write_all(request.as_bytes())?;
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf)?;
            Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
        };
        if let Some(password) = &self.password {
            send(&["AUTH", password])?;
        }
        send(args)
    }

    /// Kills the server (as a crash would).
    pub fn kill(&mut self) {
        self.proc.take();
    }
}
