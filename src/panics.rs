//! Panics inside libraries (the parquet crate on some malformed files) as errors, not as Rust
//! panic messages on the terminal.
//!
//! The shell turns a panic while running a statement into an error (`catch_unwind`, and
//! DataFusion reports a panicked task as an error). The standard panic hook would still print
//! `thread '...' panicked at ...` before that error; the hook installed here keeps the message
//! for the error instead, and prints it only with `RUST_BACKTRACE` set (for bug reports).

use std::sync::{Mutex, PoisonError};

use datafusion::error::DataFusionError;

static LAST: Mutex<Option<String>> = Mutex::new(None);

/// Install the hook (once, at start-up).
pub fn install() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let place = info
            .location()
            .map(|l| format!(" (at {}:{})", l.file(), l.line()))
            .unwrap_or_default();
        *LAST.lock().unwrap_or_else(PoisonError::into_inner) = Some(format!("{message}{place}"));
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            default(info);
        }
    }));
}

/// The message of the last panic, taken (so the next error does not repeat it).
pub fn last_message() -> String {
    LAST.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .unwrap_or_else(|| "no message".to_string())
}

/// `e`, with the last panic's message added when it reports a panic without it.
pub fn with_message(e: DataFusionError) -> DataFusionError {
    let text = e.to_string();
    if !text.contains("panic") {
        return e;
    }
    match LAST.lock().unwrap_or_else(PoisonError::into_inner).take() {
        Some(message) if !text.contains(&message) => {
            e.context(format!("a library panicked: {message}"))
        }
        _ => e,
    }
}
