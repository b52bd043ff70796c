//! Values across the Rust/JavaScript border.
//!
//! Out of the script we follow `JSON.stringify`: `toJSON` is honoured (so a
//! `Date` becomes its ISO string), `undefined`, functions and symbols are dropped
//! from objects and become `null` in arrays, `NaN` and `±Infinity` become
//! `null`. Two differences: a `BigInt` becomes a JSON integer when it fits 64
//! bits and a decimal string otherwise (`JSON.stringify` throws), and integral
//! numbers are written without a fraction (`60`, not `60.0`), as ChirpStack does.
//!
//! Both directions are bounded: nesting deeper than [`MAX_DEPTH`] (which also
//! catches cycles) and output larger than [`MAX_OUTPUT_BYTES`] are errors, so a
//! hostile script cannot make the Rust side recurse or allocate without limit.

use rquickjs::{
    convert::Coerced, function::This, Array, Ctx, Function, Object, String as JsString, Value,
};
use serde_json::{Map, Number, Value as Json};

use crate::cayenne::json_number;

/// Deepest nesting of objects and arrays accepted in either direction.
///
/// Well under serde_json's parse limit of 128, so whatever we emit can be read back.
pub const MAX_DEPTH: usize = 64;

/// Upper bound on the size of one converted script output (roughly its JSON length).
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// Why a value could not cross the border.
#[derive(Debug)]
pub(super) enum ConvError {
    /// QuickJS raised (a getter, `toJSON` or proxy trap threw, or memory ran out).
    Js(rquickjs::Error),
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Bigger than the budget.
    TooBig,
    /// A string with a lone surrogate, which is not valid Unicode.
    BadString,
}

impl From<rquickjs::Error> for ConvError {
    fn from(e: rquickjs::Error) -> Self {
        match e {
            rquickjs::Error::Utf8(_) => ConvError::BadString,
            e => ConvError::Js(e),
        }
    }
}

/// Convert script output to JSON within a byte budget.
pub(super) struct ToJson {
    budget: usize,
}

impl ToJson {
    pub(super) fn new() -> Self {
        ToJson {
            budget: MAX_OUTPUT_BYTES,
        }
    }

    fn spend(&mut self, n: usize) -> Result<(), ConvError> {
        self.budget = self.budget.checked_sub(n).ok_or(ConvError::TooBig)?;
        Ok(())
    }

    /// Convert one value; `None` is "absent" (undefined, a function, a symbol).
    pub(super) fn convert<'js>(&mut self, v: Value<'js>) -> Result<Option<Json>, ConvError> {
        self.value(v, "", 0)
    }

    fn value<'js>(
        &mut self,
        v: Value<'js>,
        key: &str,
        depth: usize,
    ) -> Result<Option<Json>, ConvError> {
        if depth > MAX_DEPTH {
            return Err(ConvError::TooDeep);
        }
        self.spend(8)?;
        let v = match v.as_object() {
            Some(obj) if !v.is_function() => {
                let to_json: Value = obj.get("toJSON")?;
                match to_json.as_function() {
                    Some(f) => f.call((This(obj.clone()), key))?,
                    None => v,
                }
            }
            _ => v,
        };
        if v.is_undefined() || v.is_function() || v.is_symbol() {
            return Ok(None);
        }
        if v.is_null() {
            return Ok(Some(Json::Null));
        }
        if let Some(b) = v.as_bool() {
            return Ok(Some(Json::Bool(b)));
        }
        if let Some(i) = v.as_int() {
            return Ok(Some(Json::from(i)));
        }
        if let Some(f) = v.as_float() {
            return Ok(Some(if f.is_finite() {
                json_number(f)
            } else {
                Json::Null
            }));
        }
        if let Some(s) = v.as_string() {
            let s = s.to_string()?;
            self.spend(s.len())?;
            return Ok(Some(Json::String(s)));
        }
        if v.is_big_int() {
            let Coerced(text) = v.get::<Coerced<String>>()?;
            self.spend(text.len())?;
            return Ok(Some(if let Ok(i) = text.parse::<i64>() {
                Json::Number(Number::from(i))
            } else if let Ok(u) = text.parse::<u64>() {
                Json::Number(Number::from(u))
            } else {
                Json::String(text)
            }));
        }
        let Some(obj) = v.as_object() else {
            // Anything else (a module, an uninitialised value) has no JSON form.
            return Ok(None);
        };
        if v.is_array() {
            let len = self.array_len(obj)?;
            let mut items = Vec::with_capacity(len.min(1024));
            for i in 0..len {
                let item: Value = obj.get(i as u32)?;
                items.push(
                    self.value(item, &i.to_string(), depth + 1)?
                        .unwrap_or(Json::Null),
                );
            }
            return Ok(Some(Json::Array(items)));
        }
        let mut map = Map::new();
        let keys: Vec<String> = obj.keys::<String>().collect::<Result<_, _>>()?;
        for k in keys {
            self.spend(k.len() + 3)?;
            let item: Value = obj.get(k.as_str())?;
            if let Some(j) = self.value(item, &k, depth + 1)? {
                map.insert(k, j);
            }
        }
        Ok(Some(Json::Object(map)))
    }

    /// An array's length, refused when it alone would blow the budget (`a.length = 1e9`).
    fn array_len<'js>(&mut self, obj: &Object<'js>) -> Result<usize, ConvError> {
        let len: Value = obj.get("length")?;
        let len = len.as_number().unwrap_or(0.0);
        if !(0.0..=(self.budget / 8) as f64).contains(&len) {
            return Err(ConvError::TooBig);
        }
        Ok(len as usize)
    }
}

/// Convert input JSON to a JavaScript value.
pub(super) fn to_js<'js>(ctx: &Ctx<'js>, v: &Json, depth: usize) -> Result<Value<'js>, ConvError> {
    if depth > MAX_DEPTH {
        return Err(ConvError::TooDeep);
    }
    Ok(match v {
        Json::Null => Value::new_null(ctx.clone()),
        Json::Bool(b) => Value::new_bool(ctx.clone(), *b),
        Json::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => Value::new_int(ctx.clone(), i),
            None => Value::new_float(ctx.clone(), n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => JsString::from_str(ctx.clone(), s)?.into_value(),
        Json::Array(items) => {
            let arr = Array::new(ctx.clone())?;
            for (i, item) in items.iter().enumerate() {
                arr.set(i, to_js(ctx, item, depth + 1)?)?;
            }
            arr.into_value()
        }
        Json::Object(map) => {
            let obj = Object::new(ctx.clone())?;
            for (k, item) in map {
                obj.set(k.as_str(), to_js(ctx, item, depth + 1)?)?;
            }
            obj.into_value()
        }
    })
}

/// A short description of a value for error messages: its JSON if small, else its type.
pub(super) fn describe(v: Value<'_>) -> String {
    let type_name = v.type_name();
    let mut conv = ToJson::new();
    conv.budget = 256;
    match conv.convert(v) {
        Ok(Some(j)) => j.to_string(),
        Ok(None) | Err(_) => type_name.to_owned(),
    }
}

/// Is `f` callable? (A tiny helper so callers need not import `Function`.)
pub(super) fn as_function<'js>(v: &Value<'js>) -> Option<Function<'js>> {
    v.as_function().cloned()
}
