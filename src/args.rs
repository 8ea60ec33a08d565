//! Arguments whose extraction fails the way the value inside them fails.
//!
//! pyo3's derived `FromPyObject` wraps the error of any struct field in
//! `TypeError("failed to extract field S.f")`, the real error as its cause. Stock Dagster hands
//! the same values to `sqlite3`, which raises the real error: a lone surrogate's
//! `UnicodeEncodeError` (a `ValueError`), an int past 64 bits' `OverflowError`. A handler
//! written against stock catches those, not a `TypeError`. `Arg<T>` extracts `T` and, when that
//! fails, raises the innermost error of the chain unless it is a `TypeError` itself (a value of
//! the wrong type stays the `TypeError` it was).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

pub struct Arg<T>(pub T);

impl<'a, 'py, T> FromPyObject<'a, 'py> for Arg<T>
where
    T: FromPyObject<'a, 'py>,
{
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        T::extract(obj)
            .map(Arg)
            .map_err(|err| root_cause(obj.py(), err.into()))
    }
}

/// The first error down `err`'s chain of causes that is not a `TypeError`, else `err`.
pub fn root_cause(py: Python<'_>, err: PyErr) -> PyErr {
    let mut inner = err.clone_ref(py);
    while inner.is_instance_of::<PyTypeError>(py) {
        match inner.cause(py) {
            Some(cause) => inner = cause,
            None => return err,
        }
    }
    inner
}
