//! Dagster's `deserialize_value`, natively: the same objects from the same JSON text.
//!
//! Reading an event log is bound by deserializing `EventLogEntry` bodies (about 60 µs an event
//! in Python, against 1 µs to fetch it). This parses the JSON itself and builds the objects
//! bottom up exactly as `json.loads(..., object_hook=_unpack_object)` followed by
//! `ObjectSerializer.unpack` does, but without their Python-level loops: Dagster's own code still
//! decides everything that is Dagster's — the deserializer registered for a class name, its
//! `before_unpack`, field serializers, renamed and unknown fields, the class's constructor, enum
//! unpacking, and any serializer that overrides `unpack` is called as it is.
//!
//! Whatever stock would handle through its error and compatibility paths (an unknown class or
//! enum, a constructor or hook that raises — stock may then call `handle_unpack_error` —,
//! `__mapping_items__`, a lone surrogate, malformed JSON) makes the walk give up, and the Python
//! caller deserializes that body with stock `deserialize_value`, which returns stock's value or
//! raises stock's error. Equality with stock is tested on real events (`tests/test_serdes.py`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyFrozenSet, PyList, PySet, PyString};

use crate::serdes::{attr_map, dict_attr, overrides};

/// What a class's `ObjectSerializer` says about unpacking it, read once.
struct ClassInfo {
    serializer: Py<PyAny>,
    klass: Py<PyAny>,
    loaded_names: HashMap<String, String>,
    params: HashSet<String>,
    custom: HashMap<String, Py<PyAny>>,
    calls_before_unpack: bool,
    /// The serializer overrides `unpack`: it is called with the dict as stock calls it.
    own_unpack: bool,
}

pub(crate) struct Unpacker {
    whitelist_map: Py<PyAny>,
    object_deserializers: Py<PyDict>,
    enum_serializers: Py<PyDict>,
    object_serializer: Py<PyAny>,
    unpack_context: Py<PyAny>,
    classes: Mutex<HashMap<String, Arc<ClassInfo>>>,
}

/// Why the native walk stopped: the caller falls back to stock for the whole body.
pub(crate) struct GiveUp;

impl From<PyErr> for GiveUp {
    fn from(_: PyErr) -> Self {
        GiveUp
    }
}

impl From<std::convert::Infallible> for GiveUp {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

type Result<T> = std::result::Result<T, GiveUp>;

/// One body being unpacked: its `UnpackContext`, made when a hook first needs it.
struct Body<'py> {
    py: Python<'py>,
    context: Option<Bound<'py, PyAny>>,
}

impl Unpacker {
    pub(crate) fn new(py: Python<'_>, whitelist_map: Py<PyAny>) -> PyResult<Self> {
        let serdes = py.import("dagster_shared.serdes.serdes")?;
        let wm = whitelist_map.bind(py);
        Ok(Unpacker {
            object_deserializers: dict_attr(wm, "object_deserializers")?,
            enum_serializers: dict_attr(wm, "enum_serializers")?,
            whitelist_map,
            object_serializer: serdes.getattr("ObjectSerializer")?.unbind(),
            unpack_context: serdes.getattr("UnpackContext")?.unbind(),
            classes: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn deserialize(&self, py: Python<'_>, text: &str) -> PyResult<Py<PyAny>> {
        let mut body = Body { py, context: None };
        let mut parser = Parser {
            bytes: text.as_bytes(),
            text,
            pos: 0,
        };
        let outcome = (|| -> Result<Py<PyAny>> {
            let value = self.value(&mut parser, &mut body)?;
            parser.skip_ws();
            if parser.pos != parser.bytes.len() {
                return Err(GiveUp);
            }
            if let Some(context) = &body.context {
                // An unknown value observed by a hook: stock's finalize raises its own error.
                if context
                    .getattr("observed_unknown_serdes_values")?
                    .is_truthy()?
                {
                    return Err(GiveUp);
                }
            }
            Ok(value.unbind())
        })();
        outcome.map_err(|GiveUp| PyValueError::new_err("left to stock deserialize_value"))
    }

    fn context<'py>(&self, body: &mut Body<'py>) -> Result<Bound<'py, PyAny>> {
        if body.context.is_none() {
            body.context = Some(self.unpack_context.bind(body.py).call0()?);
        }
        Ok(body.context.clone().expect("just set"))
    }

    fn value<'py>(&self, p: &mut Parser<'_>, body: &mut Body<'py>) -> Result<Bound<'py, PyAny>> {
        let py = body.py;
        p.skip_ws();
        match p.peek().ok_or(GiveUp)? {
            b'{' => {
                p.pos += 1;
                let dict = PyDict::new(py);
                p.skip_ws();
                if p.peek() == Some(b'}') {
                    p.pos += 1;
                } else {
                    loop {
                        p.skip_ws();
                        // Keys repeat across objects (field names): interned, their hash is
                        // computed once, as json's decoder memoizes them.
                        let key = PyString::intern(py, &p.string()?);
                        p.skip_ws();
                        p.expect(b':')?;
                        let value = self.value(p, body)?;
                        dict.set_item(key, value)?;
                        p.skip_ws();
                        match p.next().ok_or(GiveUp)? {
                            b',' => continue,
                            b'}' => break,
                            _ => return Err(GiveUp),
                        }
                    }
                }
                self.unpack_object(dict, body)
            }
            b'[' => {
                p.pos += 1;
                let list = PyList::empty(py);
                p.skip_ws();
                if p.peek() == Some(b']') {
                    p.pos += 1;
                    return Ok(list.into_any());
                }
                loop {
                    list.append(self.value(p, body)?)?;
                    p.skip_ws();
                    match p.next().ok_or(GiveUp)? {
                        b',' => continue,
                        b']' => break,
                        _ => return Err(GiveUp),
                    }
                }
                Ok(list.into_any())
            }
            b'"' => Ok(p.py_string(py)?.into_any()),
            b't' => p.word("true", true.into_pyobject(py)?.to_owned().into_any()),
            b'f' => p.word("false", false.into_pyobject(py)?.to_owned().into_any()),
            b'n' => p.word("null", py.None().into_bound(py)),
            b'N' => p.word("NaN", PyFloat::new(py, f64::NAN).into_any()),
            b'I' => p.word("Infinity", PyFloat::new(py, f64::INFINITY).into_any()),
            _ => p.number(py),
        }
    }

    /// `_unpack_object`: a dict with a marker key becomes what it marks.
    fn unpack_object<'py>(
        &self,
        dict: Bound<'py, PyDict>,
        body: &mut Body<'py>,
    ) -> Result<Bound<'py, PyAny>> {
        let py = body.py;
        if let Some(name) = dict.get_item(intern!(py, "__class__"))? {
            let name: String = name.extract()?;
            let info = self.class_info(py, &name)?;
            dict.del_item(intern!(py, "__class__"))?;
            return self.unpack_class(&info, dict, body);
        }
        if let Some(marker) = dict.get_item(intern!(py, "__enum__"))? {
            let marker: String = marker.extract()?;
            let mut parts = marker.split('.');
            let (Some(name), Some(member), None) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(GiveUp);
            };
            let serializer = self
                .enum_serializers
                .bind(py)
                .get_item(name)?
                .ok_or(GiveUp)?;
            return Ok(serializer.call_method1(intern!(py, "unpack"), (member,))?);
        }
        if let Some(items) = dict.get_item(intern!(py, "__set__"))? {
            return Ok(
                PySet::new(py, items.try_iter()?.collect::<PyResult<Vec<_>>>()?)?.into_any(),
            );
        }
        if let Some(items) = dict.get_item(intern!(py, "__frozenset__"))? {
            return Ok(
                PyFrozenSet::new(py, items.try_iter()?.collect::<PyResult<Vec<_>>>()?)?.into_any(),
            );
        }
        if dict.contains(intern!(py, "__mapping_items__"))? {
            return Err(GiveUp);
        }
        Ok(dict.into_any())
    }

    fn class_info(&self, py: Python<'_>, name: &str) -> Result<Arc<ClassInfo>> {
        let Some(serializer) = self.object_deserializers.bind(py).get_item(name)? else {
            return Err(GiveUp);
        };
        if let Some(info) = self.classes.lock().get(name) {
            if info.serializer.is(&serializer) {
                return Ok(info.clone());
            }
        }
        let base = self.object_serializer.bind(py);
        let overrides = |method: &str| overrides(&serializer, base, method);
        let loaded_names = attr_map(&serializer, "loaded_field_names", |v| v.extract())?;
        let custom = attr_map(&serializer, "field_serializers", |v| Ok(v.unbind()))?;
        let own_unpack = overrides("unpack")?;
        let params = if own_unpack {
            HashSet::new()
        } else {
            serializer
                .getattr("constructor_param_names")?
                .try_iter()?
                .map(|n| n.and_then(|n| n.extract()))
                .collect::<PyResult<_>>()?
        };
        let info = Arc::new(ClassInfo {
            klass: serializer.getattr("klass")?.unbind(),
            loaded_names,
            params,
            custom,
            calls_before_unpack: overrides("before_unpack")?,
            own_unpack,
            serializer: serializer.unbind(),
        });
        self.classes.lock().insert(name.to_owned(), info.clone());
        Ok(info)
    }

    /// `ObjectSerializer.unpack` without its `handle_unpack_error` path (any failure gives up).
    fn unpack_class<'py>(
        &self,
        info: &ClassInfo,
        dict: Bound<'py, PyDict>,
        body: &mut Body<'py>,
    ) -> Result<Bound<'py, PyAny>> {
        let py = body.py;
        let serializer = info.serializer.bind(py);
        let wm = self.whitelist_map.bind(py);
        if info.own_unpack {
            let context = self.context(body)?;
            return Ok(serializer.call_method1(intern!(py, "unpack"), (dict, wm, context))?);
        }
        let dict = if info.calls_before_unpack {
            let context = self.context(body)?;
            serializer
                .call_method1(intern!(py, "before_unpack"), (context, dict))?
                .cast_into::<PyDict>()
                .map_err(PyErr::from)?
        } else {
            dict
        };
        let kwargs = PyDict::new(py);
        for (key, value) in dict.iter() {
            let key = key.cast_into::<PyString>().map_err(PyErr::from)?;
            let (key, loaded) = match info.loaded_names.get(key.to_str()?) {
                Some(renamed) => (PyString::intern(py, renamed), renamed.as_str()),
                None => (key.clone(), key.to_str()?),
            };
            if !info.params.contains(loaded) {
                // Stock drops fields the class no longer has.
                continue;
            }
            let value = match info.custom.get(loaded) {
                Some(custom) => {
                    let call_kwargs = PyDict::new(py);
                    call_kwargs.set_item("whitelist_map", wm)?;
                    call_kwargs.set_item("context", self.context(body)?)?;
                    custom
                        .bind(py)
                        .call_method("unpack", (value,), Some(&call_kwargs))?
                }
                None => value,
            };
            kwargs.set_item(key, value)?;
        }
        Ok(info.klass.bind(py).call((), Some(&kwargs))?)
    }
}

/// A JSON reader over the body's text, accepting what Python's `json.loads(strict=False)` does.
struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<()> {
        if self.next() == Some(b) {
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    fn word<T>(&mut self, word: &str, value: T) -> Result<T> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(GiveUp)
        }
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self.text.get(self.pos..self.pos + 4).ok_or(GiveUp)?;
        let v = u32::from_str_radix(digits, 16).map_err(|_| GiveUp)?;
        self.pos += 4;
        Ok(v)
    }

    /// A string value as a Python `str`: straight from the text when it has no escapes.
    fn py_string<'py>(&mut self, py: Python<'py>) -> Result<Bound<'py, PyString>> {
        let start = self.pos + 1;
        let mut end = start;
        while let Some(&b) = self.bytes.get(end) {
            match b {
                b'"' => {
                    self.pos = end + 1;
                    return Ok(PyString::new(py, &self.text[start..end]));
                }
                b'\\' => break,
                _ => end += 1,
            }
        }
        Ok(PyString::new(py, &self.string()?))
    }

    fn string(&mut self) -> Result<String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while !matches!(self.peek(), Some(b'"' | b'\\') | None) {
                self.pos += 1;
            }
            out.push_str(&self.text[start..self.pos]);
            match self.next().ok_or(GiveUp)? {
                b'"' => return Ok(out),
                _ => {
                    let c = match self.next().ok_or(GiveUp)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let first = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&first) {
                                // A surrogate pair; a lone surrogate cannot be a Rust string.
                                if !self.bytes[self.pos..].starts_with(b"\\u") {
                                    return Err(GiveUp);
                                }
                                self.pos += 2;
                                let second = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&second) {
                                    return Err(GiveUp);
                                }
                                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                            } else {
                                first
                            };
                            char::from_u32(code).ok_or(GiveUp)?
                        }
                        _ => return Err(GiveUp),
                    };
                    out.push(c);
                }
            }
        }
    }

    fn number<'py>(&mut self, py: Python<'py>) -> Result<Bound<'py, PyAny>> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
            if self.bytes[self.pos..].starts_with(b"Infinity") {
                self.pos += 8;
                return Ok(PyFloat::new(py, f64::NEG_INFINITY).into_any());
            }
        }
        let digits = |p: &mut Self| {
            let s = p.pos;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.pos += 1;
            }
            p.pos > s
        };
        if !digits(self) {
            return Err(GiveUp);
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            float = true;
            if !digits(self) {
                return Err(GiveUp);
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            float = true;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(GiveUp);
            }
        }
        let text = &self.text[start..self.pos];
        if float {
            // Correctly rounded, as Python's float(): the same double.
            let f: f64 = text.parse().map_err(|_| GiveUp)?;
            return Ok(PyFloat::new(py, f).into_any());
        }
        match text.parse::<i64>() {
            Ok(i) => Ok(i.into_pyobject(py)?.into_any()),
            Err(_) => Ok(py.import("builtins")?.getattr("int")?.call1((text,))?),
        }
    }
}
