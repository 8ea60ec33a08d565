//! Dagster's `serialize_value`, natively: the same JSON text, byte for byte.
//!
//! Serializing the `EventLogEntry` is most of what storing an event costs once the database work
//! is in Rust (about 200 µs for a materialization in Python). This walks the value the way
//! `dagster_shared.serdes.serdes._transform_for_serialization` does and writes what
//! `json.dumps(..., sort_keys=True)` would: `", "` and `": "` separators, ASCII-only output,
//! Python's float and int reprs. Dagster's own objects are still consulted for everything that is
//! theirs to decide: the serializer registered for a class name (`WhitelistMap`), its
//! `object_as_mapping` / `before_pack` / field serializers / renames / skipped and old fields,
//! enum packing, and any serializer that overrides `pack_items` is asked for its items.
//!
//! Anything this walker does not handle the way stock would (a non-string dict key, a string
//! with lone surrogates, an unknown type, a non-whitelisted class) is reported as
//! [`Unsupported`], and the Python caller falls back to stock `serialize_value`, which then
//! serializes it or raises stock's own error. Output equality is tested against
//! `serialize_value` on real events.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;

use crate::serdes_de::Unpacker;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple, PyType,
};

/// Why the native walk gave up; the caller serializes with stock code instead.
#[derive(Debug)]
enum Fail {
    Unsupported(String),
    Python(PyErr),
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Self {
        Fail::Python(e)
    }
}

type Result<T> = std::result::Result<T, Fail>;

fn unsupported<T>(what: impl Into<String>) -> Result<T> {
    Err(Fail::Unsupported(what.into()))
}

/// What a whitelisted class's `ObjectSerializer` says about packing it, read once per class.
struct ObjectInfo {
    serializer: Py<PyAny>,
    storage_name: String,
    renames: HashMap<String, String>,
    custom: HashMap<String, Py<PyAny>>,
    skip_when_empty: HashSet<String>,
    skip_when_none: HashSet<String>,
    old_fields: Vec<(String, Py<PyAny>)>,
    calls_before_pack: bool,
    /// The serializer overrides `pack_items`: its items are taken as it yields them.
    own_pack_items: bool,
}

/// Python objects the walk compares against, imported once.
struct Refs {
    whitelist_map: Py<PyAny>,
    object_serializers: Py<PyDict>,
    enum_serializers: Py<PyDict>,
    object_serializer: Py<PyType>,
    non_scalar_key_mapping: Py<PyType>,
    enum_type: Py<PyType>,
    base_model: Py<PyType>,
    is_dataclass: Py<PyAny>,
    mapping_abc: Py<PyType>,
    sequence_abc: Py<PyType>,
    pack_object: Py<PyAny>,
    empty_values: Py<PyAny>,
    sorted: Py<PyAny>,
    str_type: Py<PyAny>,
}

/// Dagster's serdes over its `WhitelistMap`: `serialize` (here) and `deserialize`
/// (`serdes_de.rs`).
#[pyclass(frozen, module = "dagster_rs._native")]
pub struct Serdes {
    refs: Refs,
    unpacker: Unpacker,
    /// Keyed by the class object's address; the class is kept alive by `ObjectInfo::serializer`'s
    /// own reference to it (`serializer.klass`).
    classes: Mutex<HashMap<usize, Arc<ObjectInfo>>>,
}

/// Whether a serializer's class overrides one of `ObjectSerializer`'s methods (a hook of its own
/// that must be called rather than reproduced).
pub(crate) fn overrides(
    serializer: &Bound<'_, PyAny>,
    base: &Bound<'_, PyAny>,
    method: &str,
) -> PyResult<bool> {
    let own = serializer.get_type().getattr(method)?;
    Ok(!own.is(&base.getattr(method)?))
}

/// A serializer's dict attribute (field renames, field serializers) keyed by field name.
pub(crate) fn attr_map<'py, V>(
    serializer: &Bound<'py, PyAny>,
    attr: &str,
    value: impl Fn(Bound<'py, PyAny>) -> PyResult<V>,
) -> PyResult<HashMap<String, V>> {
    let dict = serializer.getattr(attr)?.cast_into::<PyDict>()?;
    dict.iter()
        .map(|(k, v)| Ok((k.extract()?, value(v)?)))
        .collect()
}

fn names(obj: &Bound<'_, PyAny>) -> PyResult<HashSet<String>> {
    if obj.is_none() {
        return Ok(HashSet::new());
    }
    obj.try_iter()?.map(|k| k?.extract()).collect()
}

impl Serdes {
    fn info(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> Result<Arc<ObjectInfo>> {
        let cls = value.get_type();
        let key = cls.as_ptr() as usize;
        if let Some(info) = self.classes.lock().get(&key) {
            return Ok(info.clone());
        }
        let name = cls.name()?;
        let serializers = self.refs.object_serializers.bind(py);
        let Some(serializer) = serializers.get_item(&name)? else {
            return unsupported(format!("{name} is not whitelisted"));
        };
        let base = self.refs.object_serializer.bind(py);
        let overrides = |method: &str| overrides(&serializer, base, method);
        let renames = attr_map(&serializer, "storage_field_names", |v| v.extract())?;
        let custom = attr_map(&serializer, "field_serializers", |v| Ok(v.unbind()))?;
        let mut old_fields = Vec::new();
        for (k, v) in serializer
            .getattr("old_fields")?
            .cast::<PyDict>()
            .map_err(PyErr::from)?
        {
            old_fields.push((k.extract()?, v.unbind()));
        }
        let info = Arc::new(ObjectInfo {
            storage_name: serializer.call_method0("get_storage_name")?.extract()?,
            renames,
            custom,
            skip_when_empty: names(&serializer.getattr("skip_when_empty_fields")?)?,
            skip_when_none: names(&serializer.getattr("skip_when_none_fields")?)?,
            old_fields,
            calls_before_pack: overrides("before_pack")?,
            own_pack_items: overrides("pack_items")?,
            serializer: serializer.unbind(),
        });
        // Only classes whose serializer packs this very class are cached by its address.
        if info
            .serializer
            .bind(py)
            .getattr("klass")
            .is_ok_and(|k| k.is(&cls))
        {
            self.classes.lock().insert(key, info.clone());
        }
        Ok(info)
    }

    fn write(&self, py: Python<'_>, value: &Bound<'_, PyAny>, out: &mut String) -> Result<()> {
        if value.is_none() {
            out.push_str("null");
            return Ok(());
        }
        if value.is_exact_instance_of::<PyBool>() {
            out.push_str(if value.is_truthy()? { "true" } else { "false" });
            return Ok(());
        }
        if value.is_exact_instance_of::<PyInt>() {
            match value.extract::<i64>() {
                Ok(i) => write!(out, "{i}").expect("writing to a String"),
                Err(_) => out.push_str(&value.str()?.to_cow()?),
            }
            return Ok(());
        }
        if value.is_exact_instance_of::<PyFloat>() {
            return write_float(value, out);
        }
        if let Ok(s) = value.cast_exact::<PyString>() {
            return write_str(s, out);
        }
        if let Ok(list) = value.cast_exact::<PyList>() {
            return self.write_seq(py, list.iter(), out);
        }
        if let Ok(dict) = value.cast_exact::<PyDict>() {
            return self.write_mapping(py, dict.iter().map(Ok), out);
        }
        let refs = &self.refs;
        if value.is_exact_instance(refs.non_scalar_key_mapping.bind(py)) {
            out.push_str("{\"__mapping_items__\": [");
            let mapping = value
                .cast::<pyo3::types::PyMapping>()
                .map_err(PyErr::from)?;
            for (i, item) in mapping.items()?.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
                out.push('[');
                self.write(py, &k, out)?;
                out.push_str(", ");
                self.write(py, &v, out)?;
                out.push(']');
            }
            out.push_str("]}");
            return Ok(());
        }
        if value.is_instance(refs.enum_type.bind(py))? {
            let name = value.get_type().name()?;
            let Some(serializer) = refs.enum_serializers.bind(py).get_item(&name)? else {
                return unsupported(format!("enum {name} is not whitelisted"));
            };
            let packed =
                serializer.call_method1("pack", (value, refs.whitelist_map.bind(py), ""))?;
            out.push_str("{\"__enum__\": ");
            self.write(py, &packed, out)?;
            out.push('}');
            return Ok(());
        }
        let is_named_tuple = value.is_instance_of::<PyTuple>() && value.hasattr("_fields")?;
        if is_named_tuple
            || value.is_instance(refs.base_model.bind(py))?
            || (!value.is_instance_of::<PyType>()
                && refs.is_dataclass.bind(py).call1((value,))?.is_truthy()?)
        {
            return self.write_object(py, value, out);
        }
        if value.is_instance_of::<PySet>() || value.is_instance_of::<PyFrozenSet>() {
            let tag = if value.is_instance_of::<PySet>() {
                "__set__"
            } else {
                "__frozenset__"
            };
            let kwargs = PyDict::new(py);
            kwargs.set_item("key", refs.str_type.bind(py))?;
            let items = refs.sorted.bind(py).call((value,), Some(&kwargs))?;
            write!(out, "{{\"{tag}\": ").expect("writing to a String");
            self.write_seq(
                py,
                items.try_iter()?.collect::<PyResult<Vec<_>>>()?.into_iter(),
                out,
            )?;
            out.push('}');
            return Ok(());
        }
        if let Ok(s) = value.cast::<PyString>() {
            return write_str(s, out);
        }
        if value.is_instance(refs.mapping_abc.bind(py))? {
            let items = value.call_method0("items")?;
            let pairs = items
                .try_iter()?
                .map(|item| item.and_then(|i| i.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()))
                .collect::<PyResult<Vec<_>>>()?;
            return self.write_mapping(py, pairs.into_iter().map(Ok), out);
        }
        if value.is_instance(refs.sequence_abc.bind(py))? {
            let items = value.try_iter()?.collect::<PyResult<Vec<_>>>()?;
            return self.write_seq(py, items.into_iter(), out);
        }
        unsupported(format!("unhandled type {}", value.get_type().name()?))
    }

    fn write_seq<'py>(
        &self,
        py: Python<'py>,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
        out: &mut String,
    ) -> Result<()> {
        out.push('[');
        for (i, item) in items.enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            self.write(py, &item, out)?;
        }
        out.push(']');
        Ok(())
    }

    /// A JSON object with its keys sorted, as `sort_keys=True` does. Keys must be strings: json
    /// would convert other scalars after sorting them by their own ordering, which this does
    /// not reproduce.
    fn write_mapping<'py>(
        &self,
        py: Python<'py>,
        items: impl Iterator<Item = PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)>>,
        out: &mut String,
    ) -> Result<()> {
        let mut entries: Vec<(String, Bound<'py, PyAny>)> = Vec::new();
        for item in items {
            let (k, v) = item?;
            let Ok(key) = k.cast::<PyString>() else {
                return unsupported("a mapping key that is not a string");
            };
            entries.push((key.to_str()?.to_owned(), v));
        }
        self.write_entries(py, entries, out)
    }

    fn write_entries<'py>(
        &self,
        py: Python<'py>,
        mut entries: Vec<(String, Bound<'py, PyAny>)>,
        out: &mut String,
    ) -> Result<()> {
        // Code-point order, which is Python's `str` ordering. Equal keys (possible only from a
        // serializer's own `pack_items`) keep their order; json would compare their values.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        out.push('{');
        for (i, (key, value)) in entries.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            escape_into(key, out);
            out.push_str(": ");
            self.write(py, value, out)?;
        }
        out.push('}');
        Ok(())
    }

    /// `ObjectSerializer.pack_items`, field for field.
    fn write_object(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        out: &mut String,
    ) -> Result<()> {
        let info = self.info(py, value)?;
        let serializer = info.serializer.bind(py);
        let wm = self.refs.whitelist_map.bind(py);
        let mut entries: Vec<(String, Bound<'_, PyAny>)> = Vec::new();
        if info.own_pack_items {
            let items = serializer.call_method1(
                "pack_items",
                (value, wm, self.refs.pack_object.bind(py), ""),
            )?;
            for item in items.try_iter()? {
                let (k, v): (String, Bound<'_, PyAny>) = item?.extract()?;
                entries.push((k, v));
            }
            return self.write_entries(py, entries, out);
        }
        entries.push((
            "__class__".to_owned(),
            PyString::new(py, &info.storage_name).into_any(),
        ));
        let target = if info.calls_before_pack {
            serializer.call_method1("before_pack", (value,))?
        } else {
            value.clone()
        };
        let mapping = serializer.call_method1("object_as_mapping", (target,))?;
        let fields: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = match mapping.cast::<PyDict>() {
            Ok(d) => d.iter().collect(),
            Err(_) => mapping
                .call_method0("items")?
                .try_iter()?
                .map(|i| i.and_then(|i| i.extract()))
                .collect::<PyResult<_>>()?,
        };
        for (k, inner) in fields {
            let key: String = k.extract()?;
            let field_value = match info.custom.get(&key) {
                Some(custom) => {
                    let kwargs = PyDict::new(py);
                    kwargs.set_item("whitelist_map", wm)?;
                    kwargs.set_item("descent_path", "")?;
                    custom
                        .bind(py)
                        .call_method("pack", (inner,), Some(&kwargs))?
                }
                None => inner,
            };
            if info.skip_when_empty.contains(&key)
                && self.refs.empty_values.bind(py).contains(&field_value)?
            {
                continue;
            }
            if info.skip_when_none.contains(&key) && field_value.is_none() {
                continue;
            }
            let storage_key = info.renames.get(&key).cloned().unwrap_or(key);
            entries.push((storage_key, field_value));
        }
        for (key, default) in &info.old_fields {
            entries.push((key.clone(), default.bind(py).clone()));
        }
        self.write_entries(py, entries, out)
    }
}

fn write_float(value: &Bound<'_, PyAny>, out: &mut String) -> Result<()> {
    let f: f64 = value.extract()?;
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        // float.__repr__: the shortest repr, in Python's own notation.
        out.push_str(&value.repr()?.to_cow()?);
    }
    Ok(())
}

fn write_str(s: &Bound<'_, PyString>, out: &mut String) -> Result<()> {
    match s.to_str() {
        Ok(text) => {
            escape_into(text, out);
            Ok(())
        }
        // Lone surrogates: json escapes them, Rust strings cannot hold them.
        Err(_) => unsupported("a string that is not valid Unicode"),
    }
}

/// `json.dumps`'s ASCII-only string literal (`ensure_ascii=True`).
pub(crate) fn escape_into(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(out, "\\u{unit:04x}").expect("writing to a String");
                }
            }
        }
    }
    out.push('"');
}

/// One of the `WhitelistMap`'s registries (a dict by class name), kept as the live object.
pub(crate) fn dict_attr(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Py<PyDict>> {
    Ok(obj.getattr(name)?.cast_into::<PyDict>()?.unbind())
}

fn py_type(module: &Bound<'_, PyModule>, name: &str) -> PyResult<Py<PyType>> {
    Ok(module.getattr(name)?.cast_into::<PyType>()?.unbind())
}

#[pymethods]
impl Serdes {
    /// Built over stock's `WhitelistMap` (`dagster_shared.serdes.serdes._WHITELIST_MAP`).
    #[new]
    fn new(py: Python<'_>, whitelist_map: Py<PyAny>) -> PyResult<Self> {
        let serdes = py.import("dagster_shared.serdes.serdes")?;
        let abc = py.import("collections.abc")?;
        let builtins = py.import("builtins")?;
        let wm = whitelist_map.bind(py);
        let base_model = serdes.call_method0("_get_pydantic_base_model")?;
        Ok(Serdes {
            unpacker: Unpacker::new(py, whitelist_map.clone_ref(py))?,
            refs: Refs {
                object_serializers: dict_attr(wm, "object_serializers")?,
                enum_serializers: dict_attr(wm, "enum_serializers")?,
                whitelist_map,
                object_serializer: py_type(&serdes, "ObjectSerializer")?,
                non_scalar_key_mapping: py_type(&serdes, "SerializableNonScalarKeyMapping")?,
                enum_type: py_type(&py.import("enum")?, "Enum")?,
                base_model: base_model.cast_into::<PyType>()?.unbind(),
                is_dataclass: py.import("dataclasses")?.getattr("is_dataclass")?.unbind(),
                mapping_abc: py_type(&abc, "Mapping")?,
                sequence_abc: py_type(&abc, "Sequence")?,
                pack_object: serdes.getattr("_pack_object")?.unbind(),
                empty_values: serdes.getattr("EMPTY_VALUES_TO_SKIP")?.unbind(),
                sorted: builtins.getattr("sorted")?.unbind(),
                str_type: builtins.getattr("str")?.unbind(),
            },
            classes: Mutex::new(HashMap::new()),
        })
    }

    /// `deserialize_value(text)`'s object; `ValueError` when the body needs stock's own code
    /// (the caller then calls `deserialize_value`, which returns it or raises its own error).
    fn deserialize(&self, py: Python<'_>, text: &str) -> PyResult<Py<PyAny>> {
        self.unpacker.deserialize(py, text)
    }

    /// `serialize_value(value)`'s text; `ValueError` when the value needs stock's own code
    /// (the caller then calls `serialize_value`, which serializes it or raises its own error).
    fn serialize(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<String> {
        let mut out = String::with_capacity(1024);
        match self.write(py, value, &mut out) {
            Ok(()) => Ok(out),
            Err(Fail::Unsupported(what)) => Err(PyValueError::new_err(what)),
            Err(Fail::Python(err)) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escape_into;

    fn esc(s: &str) -> String {
        let mut out = String::new();
        escape_into(s, &mut out);
        out
    }

    #[test]
    fn escapes_as_json_dumps_with_ensure_ascii() {
        assert_eq!(esc("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            esc("\n\r\t\u{8}\u{c}\u{1}\u{7f}"),
            r#""\n\r\t\b\f\u0001\u007f""#
        );
        assert_eq!(esc("é€"), r#""\u00e9\u20ac""#);
        assert_eq!(esc("😀"), r#""\ud83d\ude00""#);
    }
}
