//! HTTP exchanges with the management server: one POST per message, the
//! `X-Device-*` envelope on every request, the server-issued values read back
//! from the response headers, a size cap on every body, and the spec's split
//! of failures into "retry later", "give up" and "the server is not there".

use std::time::Duration;

use crate::config::Settings;
use crate::protocol::envelope::{HEADER_AUTH, HEADER_TIMESTAMP};
use crate::protocol::{Action, DeviceHeaders};
use crate::scheduler::Attempt;

/// The agent's HTTP client for the management server.
#[derive(Debug, Clone)]
pub struct Transport {
    client: reqwest::Client,
    max_response_bytes: u64,
    /// The whole-exchange limit of a protocol request (`server.request_timeout`).
    request_timeout: Duration,
}

/// A 2xx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The HTTP status.
    pub status: u16,
    /// The body, at most `max_response_bytes`, shared: a decoded poll
    /// response's package list refers to it.
    pub body: bytes::Bytes,
    /// A new `X-Device-Timestamp`, if the server issued one.
    pub timestamp: Option<String>,
    /// A new `X-Device-Auth`, if the server issued one.
    pub auth: Option<String>,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No answer at all: connection refused, DNS, TLS handshake, timeout
    /// before the response. The scheduler treats the server as unreachable.
    #[error("server unreachable: {0}")]
    Unreachable(String),
    /// The server answered with a non-2xx status.
    #[error("server answered HTTP {status}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the body, for the log.
        detail: String,
    },
    /// The answer was cut or failed while being read.
    #[error("reading the server's answer failed: {0}")]
    Body(String),
    /// The answer is larger than `server.max_response_bytes`.
    #[error("the server's answer exceeds {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: u64,
    },
    /// A file to upload could not be read.
    #[error("cannot read the file to upload: {0}")]
    File(String),
    /// The client could not be built from the configuration.
    #[error("HTTP client setup: {0}")]
    Setup(String),
}

impl TransportError {
    /// How the scheduler should count this failure (spec README: connect, TLS,
    /// DNS, timeout, 408, 429 and 5xx are retryable; other 4xx are not).
    pub fn attempt(&self) -> Attempt {
        let text = self.to_string();
        match self {
            TransportError::Unreachable(_) => Attempt::Unreachable(text),
            TransportError::Status { status, .. } if is_retryable_status(*status) => {
                Attempt::Retryable(text)
            }
            TransportError::Body(_) => Attempt::Retryable(text),
            TransportError::Status { .. }
            | TransportError::TooLarge { .. }
            | TransportError::Setup(_)
            | TransportError::File(_) => Attempt::Terminal(text),
        }
    }
}

/// 408, 429 and 5xx: the server may answer differently later.
pub fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

impl Transport {
    /// Builds the client from `[server]` and `[tls]`. Blocking (reads the
    /// certificate files): call it before the actors start.
    pub fn new(settings: &Settings) -> Result<Transport, TransportError> {
        // No whole-request limit on the client: a package download may take
        // hours on a slow link. A download that stalls is caught by the read
        // timeout (no byte for `request_timeout`) and resumes from its
        // checkpoint; protocol exchanges set the whole-request limit each.
        let mut builder = reqwest::Client::builder()
            .read_timeout(settings.server.request_timeout)
            .connect_timeout(settings.server.request_timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("dmagent/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5));
        let read = |path: &std::path::Path| {
            std::fs::read(path)
                .map_err(|e| TransportError::Setup(format!("{}: {e}", path.display())))
        };
        if let Some(bundle) = &settings.tls.ca_bundle {
            let pem = read(bundle)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| TransportError::Setup(format!("{}: {e}", bundle.display())))?;
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let (Some(cert), Some(key)) = (&settings.tls.client_cert, &settings.tls.client_key) {
            let mut pem = read(cert)?;
            pem.extend_from_slice(b"\n");
            pem.extend(read(key)?);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| TransportError::Setup(format!("{}: {e}", cert.display())))?;
            builder = builder.identity(identity);
        }
        let client = builder
            .build()
            .map_err(|e| TransportError::Setup(e.to_string()))?;
        Ok(Transport {
            client,
            max_response_bytes: settings.server.max_response_bytes,
            request_timeout: settings.server.request_timeout,
        })
    }

    /// The underlying client, for package downloads (which stream instead of
    /// buffering).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// POSTs one XML document to `url` with the standard header set.
    pub async fn post_xml(
        &self,
        url: &str,
        headers: &DeviceHeaders,
        action: Action,
        body: Vec<u8>,
    ) -> Result<Exchange, TransportError> {
        let mut request = self.client.post(url).timeout(self.request_timeout).header(
            reqwest::header::CONTENT_TYPE,
            crate::protocol::envelope::CONTENT_TYPE_XML,
        );
        for (name, value) in headers.pairs(action) {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.map_err(classify)?;
        self.read(response).await
    }

    /// POSTs one collected file as the raw request body (part B §4.3),
    /// streamed from disk in 64 KiB chunks: the file is never held in memory.
    /// The disk reads run on a blocking thread.
    pub async fn post_file(
        &self,
        url: &str,
        headers: &DeviceHeaders,
        path: &std::path::Path,
    ) -> Result<Exchange, TransportError> {
        // Opening and sizing the file are disk work too: off the async thread.
        let to_open = path.to_path_buf();
        let opened = actix_rt::task::spawn_blocking(move || {
            let file = std::fs::File::open(&to_open)?;
            let length = file.metadata()?.len();
            Ok::<_, std::io::Error>((file, length))
        })
        .await
        .map_err(|e| TransportError::File(format!("{}: {e}", path.display())))?;
        let (file, length) =
            opened.map_err(|e| TransportError::File(format!("{}: {e}", path.display())))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
        actix_rt::task::spawn_blocking(move || {
            use std::io::Read;
            let mut file = file;
            loop {
                let mut chunk = vec![0u8; 64 * 1024];
                match file.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => {
                        chunk.truncate(n);
                        if tx.blocking_send(Ok(chunk)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let mut request = self
            .client
            .post(url)
            .timeout(self.request_timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, length);
        for (name, value) in headers.file_collection_pairs(&path.display().to_string()) {
            request = request.header(name, value);
        }
        let response = request
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map_err(classify)?;
        self.read(response).await
    }

    /// Reads a response: non-2xx is an error, the body is capped.
    pub async fn read(&self, mut response: reqwest::Response) -> Result<Exchange, TransportError> {
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let timestamp = header(HEADER_TIMESTAMP);
        let auth = header(HEADER_AUTH);
        if let Some(length) = response.content_length() {
            if length > self.max_response_bytes {
                return Err(TransportError::TooLarge {
                    limit: self.max_response_bytes,
                });
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| TransportError::Body(e.to_string()))?
        {
            if body.len() as u64 + chunk.len() as u64 > self.max_response_bytes {
                return Err(TransportError::TooLarge {
                    limit: self.max_response_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !(200..300).contains(&status) {
            let detail = String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_owned();
            return Err(TransportError::Status { status, detail });
        }
        Ok(Exchange {
            status,
            body: body.into(),
            timestamp,
            auth,
        })
    }
}

/// Splits reqwest's send errors: no connection at all vs. a broken exchange.
///
/// A request that got no response at all — refused, timed out, or sent on a
/// pooled connection the server had already closed — is "no answer": the
/// server is treated as unreachable rather than as failing.
fn classify(error: reqwest::Error) -> TransportError {
    let text = error_chain(&error);
    let no_answer = error.is_request() && !error.is_body() && !error.is_decode();
    if error.is_connect() || error.is_timeout() || no_answer {
        TransportError::Unreachable(text)
    } else {
        TransportError::Body(text)
    }
}

/// The error with its causes, which is where reqwest keeps the useful part.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The server URL in force: the configured one, replaced by the server's
/// `PollServer` when it sent one. A bare host keeps the configured scheme
/// and path (the CE client's `SvrFmt`), so `dm2.example.com` moves
/// `https://dm.example.com/devicemgmt/server.aspx` to
/// `https://dm2.example.com/devicemgmt/server.aspx`.
pub fn effective_server_url(configured: Option<&str>, poll_server: Option<&str>) -> Option<String> {
    let poll_server = poll_server.map(str::trim).filter(|s| !s.is_empty());
    match (configured, poll_server) {
        (_, Some(full)) if full.contains("://") => Some(full.to_owned()),
        (Some(configured), Some(host)) => {
            let (scheme, rest) = configured.split_once("://")?;
            let path = rest
                .find('/')
                .map_or("/devicemgmt/server.aspx", |i| &rest[i..]);
            Some(format!("{scheme}://{host}{path}"))
        }
        (None, Some(host)) => Some(format!("http://{host}/devicemgmt/server.aspx")),
        (configured, None) => configured.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_server_replaces_the_configured_url() {
        let cfg = Some("https://dm.example.com/devicemgmt/server.aspx");
        assert_eq!(effective_server_url(cfg, None).as_deref(), cfg);
        assert_eq!(
            effective_server_url(cfg, Some("dm2.example.com:8443")).as_deref(),
            Some("https://dm2.example.com:8443/devicemgmt/server.aspx")
        );
        assert_eq!(
            effective_server_url(cfg, Some("http://10.0.0.5/dm")).as_deref(),
            Some("http://10.0.0.5/dm")
        );
        assert_eq!(effective_server_url(cfg, Some("  ")).as_deref(), cfg);
        assert_eq!(
            effective_server_url(None, Some("192.168.1.1")).as_deref(),
            Some("http://192.168.1.1/devicemgmt/server.aspx")
        );
        assert_eq!(effective_server_url(None, None), None);
    }

    #[test]
    fn failures_map_to_the_spec_retry_classes() {
        let status = |s| {
            TransportError::Status {
                status: s,
                detail: String::new(),
            }
            .attempt()
        };
        assert!(matches!(status(503), Attempt::Retryable(_)));
        assert!(matches!(status(408), Attempt::Retryable(_)));
        assert!(matches!(status(429), Attempt::Retryable(_)));
        assert!(matches!(status(404), Attempt::Terminal(_)));
        assert!(matches!(status(401), Attempt::Terminal(_)));
        assert!(matches!(
            TransportError::Unreachable("refused".into()).attempt(),
            Attempt::Unreachable(_)
        ));
        assert!(matches!(
            TransportError::Body("reset".into()).attempt(),
            Attempt::Retryable(_)
        ));
    }
}
