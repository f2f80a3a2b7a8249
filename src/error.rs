//! The top-level error, exit codes and the error renderer.
