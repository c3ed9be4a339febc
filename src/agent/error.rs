//! Errors of the agent's work, and how each counts for failure recovery.

use crate::protocol::DecodeError;
use crate::scheduler::Attempt;
use crate::store::StoreError;
use crate::transport::TransportError;

/// Why a piece of the agent's work failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The client database failed.
    #[error("client database: {0}")]
    Store(#[from] StoreError),
    /// The exchange with the server failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The server's answer is not a valid document.
    #[error("the server's answer was refused: {0}")]
    Decode(#[from] DecodeError),
    /// The server's answer is valid XML but does not make sense here.
    #[error("the server's answer was refused: {0}")]
    Protocol(String),
    /// No server URL is configured and the server never sent `PollServer`.
    #[error("no management server is configured (server.url)")]
    NoServer,
    /// A download failed.
    #[error("download: {0}")]
    Download(String),
    /// A download failed in a way a later attempt may fix.
    #[error("download: {0}")]
    DownloadRetryable(String),
    /// Something inside the agent failed (a blocking task panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

impl AgentError {
    /// How the scheduler counts this failure.
    pub fn attempt(&self) -> Attempt {
        let text = self.to_string();
        match self {
            AgentError::Transport(e) => e.attempt(),
            AgentError::DownloadRetryable(_) | AgentError::Store(_) | AgentError::Internal(_) => {
                Attempt::Retryable(text)
            }
            AgentError::Decode(_)
            | AgentError::Protocol(_)
            | AgentError::NoServer
            | AgentError::Download(_) => Attempt::Terminal(text),
        }
    }
}
