//! An invocation no source can answer with a normal response; Lambda records it as a function
//! error (for SQS that retries the whole batch). A leaf, so the sources and the handler that
//! dispatches to them both name it without importing each other.

/// An invocation the handler cannot answer with a normal response. Lambda records it as a
/// function error; for SQS that retries the whole batch.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(
        "unknown event: expected an SQS batch (Records[].eventSource \"aws:sqs\") or an HTTP request \
         (API Gateway HTTP API v2, Lambda Function URL, API Gateway REST API v1)"
    )]
    UnknownEvent,
    #[error(
        "an SQS message has no messageId, so it could not be reported alone: the whole batch \
         fails before anything is sent, so that nothing is lost or sent twice"
    )]
    UnreportableFailure,
    #[error("could not encode the response")]
    Encode(#[source] serde_json::Error),
}

impl HandlerError {
    /// Stable snake_case code (the Lambda `errorType`).
    pub const fn code(&self) -> &'static str {
        match self {
            HandlerError::UnknownEvent => "unknown_event",
            HandlerError::UnreportableFailure => "unreportable_failure",
            HandlerError::Encode(_) => "response_encoding_failed",
        }
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.code().to_owned(),
            error_message: error.to_string(),
        }
    }
}
