//! Errors of the pure algorithms ([`crate::kernels`]). The SQL functions turn them into
//! DataFusion errors that also name the function and the argument.

/// What can go wrong in a kernel.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
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
    /// A value a fixed-point sum cannot hold.
    #[error("cannot sum {0}: values must be finite and below 4.6e18 in magnitude")]
    NotSummable(f64),
    /// A fixed-point sum beyond its range.
    #[error("sum overflows (above about 9.2e18)")]
    SumOverflow,
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
