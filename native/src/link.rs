//! Link DATA datagrams (docs/spec-link.md §2): registered later.
use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
