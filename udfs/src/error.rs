//! Errors of the pure algorithms ([`crate::kernels`]). The SQL functions turn them into
//! DataFusion errors that also name the function and the argument.

/// What can go wrong in a kernel.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name that is not one of the accepted values (a metric, an encoding, a mode, ...).
    #[error("unknown {what} '{value}'; accepted: {accepted}")]
    UnknownChoice {
        /// What was being named ("metric").
        what: &'static str,
        /// The name given.
        value: String,
        /// The accepted names.
        accepted: String,
    },
    /// A value an exact sum cannot hold (NaN, infinity).
    #[error("cannot sum {0}: values must be finite")]
    NotSummable(f64),
    /// More than 2^42 values added into one exact-sum limb.
    #[error("sum overflows its accumulator (more than 2^42 values)")]
    SumOverflow,
    /// Work given up at its caller's request (a statement's time limit).
    #[error("stopped before it finished")]
    Stopped,
    /// Malformed input: a message that says what was expected.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// An [`Error::Invalid`] from any message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }
}

/// The error of a state the code should never reach (a bug of samplemix, not of the input):
/// `"{function}: internal error: {what} (please report it)"`, so every such site reads alike.
pub(crate) fn internal(
    function: &str,
    what: impl std::fmt::Display,
) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::Execution(format!(
        "{function}: internal error: {what} (please report it)"
    ))
}
