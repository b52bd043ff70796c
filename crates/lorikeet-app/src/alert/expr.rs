//! The expression language of `field` alert rules: comparisons over an uplink's
//! decoded `object` and a few frame fields, e.g. `object.temperature > 30` or
//! `object.door == "open" && fPort == 2`. Deliberately small — no loops, no
//! functions, no assignment — so a rule can never run away or reach anything but the
//! uplink it looks at. Grammar (lowest precedence first):
//!
//! ```text
//! or      := and ( "||" and )*
//! and     := not ( "&&" not )*
//! not     := "!" not | cmp
//! cmp     := sum ( ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) sum )?
//! sum     := product ( ( "+" | "-" ) product )*
//! product := unary ( ( "*" | "/" ) unary )*
//! unary   := "-" unary | primary
//! primary := number | string | true | false | null | path | "(" or ")"
//! path    := root ( "." name | "." digits | "[" ( string | digits ) "]" )*
//! root    := object | fPort | fCnt | dr | rssi | snr
//! ```
//!
//! A path that names nothing (a field the codec did not write) makes the
//! comparison *unknown*, and an unknown result changes no alert: a reading that
//! lacks the field neither fires nor resolves.

use std::fmt;

use serde_json::Value;

/// Longest expression accepted, in bytes.
pub const MAX_LEN: usize = 512;
/// Deepest nesting of parentheses and operators.
const MAX_DEPTH: usize = 32;

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expression error at character {at}: {message}")]
pub struct ExprError {
    /// Offset in characters (0-based) where the problem was found.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Lit(Lit),
    /// A field of the uplink.
    Path(Root, Vec<String>),
    /// `!e`.
    Not(Box<Expr>),
    /// `-e`.
    Neg(Box<Expr>),
    /// A binary operation.
    Bin(Op, Box<Expr>, Box<Expr>),
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// A number.
    Num(f64),
    /// A string.
    Str(String),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// The decoded payload.
    Object,
    /// The frame's port.
    FPort,
    /// The uplink frame counter.
    FCnt,
    /// The data rate.
    Dr,
    /// The best reception's RSSI (dBm).
    Rssi,
    /// The best reception's SNR (dB).
    Snr,
}

impl Root {
    /// The name used in expressions.
    pub fn name(self) -> &'static str {
        match self {
            Root::Object => "object",
            Root::FPort => "fPort",
            Root::FCnt => "fCnt",
            Root::Dr => "dr",
            Root::Rssi => "rssi",
            Root::Snr => "snr",
        }
    }
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `||`
    Or,
    /// `&&`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// What an uplink offers to expressions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uplink<'a> {
    /// The decoded `object` (absent without a codec).
    pub object: Option<&'a Value>,
    /// FPort.
    pub f_port: Option<u8>,
    /// FCnt.
    pub f_cnt: u32,
    /// Data rate.
    pub dr: u8,
    /// Best RSSI.
    pub rssi: Option<f64>,
    /// Best SNR.
    pub snr: Option<f64>,
}

impl Uplink<'_> {
    /// Reads `object`, `fPort`, `fCnt`, `dr` and the best `rxInfo` figures out of an
    /// `up` event body.
    pub fn from_up_event(body: &Value) -> Uplink<'_> {
        let best = body.get("rxInfo").and_then(Value::as_array).and_then(|rx| {
            rx.iter().max_by(|a, b| {
                let r = |v: &Value| v.get("rssi").and_then(Value::as_f64).unwrap_or(f64::MIN);
                r(a).total_cmp(&r(b))
            })
        });
        Uplink {
            object: body.get("object"),
            f_port: body
                .get("fPort")
                .and_then(Value::as_u64)
                .and_then(|p| u8::try_from(p).ok()),
            f_cnt: body
                .get("fCnt")
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(0),
            dr: body
                .get("dr")
                .and_then(Value::as_u64)
                .and_then(|p| u8::try_from(p).ok())
                .unwrap_or(0),
            rssi: best.and_then(|r| r.get("rssi")).and_then(Value::as_f64),
            snr: best.and_then(|r| r.get("snr")).and_then(Value::as_f64),
        }
    }
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
    /// Arrays and objects: only `==`/`!=` to `null` make sense for them.
    Other,
}

impl Expr {
    /// Parses `source`.
    pub fn parse(source: &str) -> Result<Expr, ExprError> {
        if source.len() > MAX_LEN {
            return Err(ExprError {
                at: MAX_LEN,
                message: format!("longer than {MAX_LEN} bytes"),
            });
        }
        let tokens = lex(source)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            depth: 0,
        };
        let e = p.or()?;
        match p.peek() {
            None => Ok(e),
            Some((at, t)) => Err(ExprError {
                at,
                message: format!("unexpected {t} after a complete expression"),
            }),
        }
    }

    /// Evaluates the expression as a condition: `Some(true|false)`, or `None` when
    /// it cannot be decided (a field is missing, or a comparison of unlike values).
    pub fn test(&self, up: &Uplink<'_>) -> Option<bool> {
        match self.eval(up)? {
            Val::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The numeric value of the first path compared with a number, for the alert's
    /// message (`object.temperature = 31.5`).
    pub fn first_path(&self) -> Option<(&Root, &[String])> {
        match self {
            Expr::Path(r, p) => Some((r, p)),
            Expr::Not(e) | Expr::Neg(e) => e.first_path(),
            Expr::Bin(_, a, b) => a.first_path().or_else(|| b.first_path()),
            Expr::Lit(_) => None,
        }
    }

    /// The value a path has in `up`, as JSON (for messages).
    pub fn path_value(root: Root, path: &[String], up: &Uplink<'_>) -> Option<Value> {
        resolve(root, path, up).map(|v| match v {
            Val::Num(n) => serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
            Val::Str(s) => Value::String(s),
            Val::Bool(b) => Value::Bool(b),
            Val::Null | Val::Other => Value::Null,
        })
    }

    fn eval(&self, up: &Uplink<'_>) -> Option<Val> {
        match self {
            Expr::Lit(l) => Some(match l {
                Lit::Num(n) => Val::Num(*n),
                Lit::Str(s) => Val::Str(s.clone()),
                Lit::Bool(b) => Val::Bool(*b),
                Lit::Null => Val::Null,
            }),
            Expr::Path(root, path) => resolve(*root, path, up),
            Expr::Not(e) => match e.eval(up)? {
                Val::Bool(b) => Some(Val::Bool(!b)),
                _ => None,
            },
            Expr::Neg(e) => match e.eval(up)? {
                Val::Num(n) => Some(Val::Num(-n)),
                _ => None,
            },
            Expr::Bin(Op::And, a, b) => {
                // Kleene logic: false wins over unknown.
                let x = a.test(up);
                if x == Some(false) {
                    return Some(Val::Bool(false));
                }
                let y = b.test(up);
                match (x, y) {
                    (_, Some(false)) => Some(Val::Bool(false)),
                    (Some(true), Some(true)) => Some(Val::Bool(true)),
                    _ => None,
                }
            }
            Expr::Bin(Op::Or, a, b) => {
                let x = a.test(up);
                if x == Some(true) {
                    return Some(Val::Bool(true));
                }
                let y = b.test(up);
                match (x, y) {
                    (_, Some(true)) => Some(Val::Bool(true)),
                    (Some(false), Some(false)) => Some(Val::Bool(false)),
                    _ => None,
                }
            }
            Expr::Bin(op, a, b) => {
                let (x, y) = (a.eval(up)?, b.eval(up)?);
                binary(*op, x, y)
            }
        }
    }
}

fn binary(op: Op, x: Val, y: Val) -> Option<Val> {
    use Val::*;
    match op {
        Op::Eq | Op::Ne => {
            let same = match (&x, &y) {
                (Num(a), Num(b)) => a == b,
                (Str(a), Str(b)) => a == b,
                (Bool(a), Bool(b)) => a == b,
                (Null, Null) => true,
                (Null, _) | (_, Null) => false,
                _ => return None,
            };
            Some(Bool(if op == Op::Eq { same } else { !same }))
        }
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let ord = match (&x, &y) {
                (Num(a), Num(b)) => a.partial_cmp(b)?,
                (Str(a), Str(b)) => a.cmp(b),
                _ => return None,
            };
            use std::cmp::Ordering::*;
            Some(Bool(match op {
                Op::Lt => ord == Less,
                Op::Le => ord != Greater,
                Op::Gt => ord == Greater,
                _ => ord != Less,
            }))
        }
        Op::Add | Op::Sub | Op::Mul | Op::Div => {
            let (Num(a), Num(b)) = (x, y) else {
                return None;
            };
            let r = match op {
                Op::Add => a + b,
                Op::Sub => a - b,
                Op::Mul => a * b,
                _ => a / b,
            };
            r.is_finite().then_some(Num(r))
        }
        Op::And | Op::Or => None,
    }
}

fn resolve(root: Root, path: &[String], up: &Uplink<'_>) -> Option<Val> {
    let num = |n: f64| Some(Val::Num(n));
    match root {
        Root::FPort => return up.f_port.and_then(|p| num(f64::from(p))),
        Root::FCnt => return num(f64::from(up.f_cnt)),
        Root::Dr => return num(f64::from(up.dr)),
        Root::Rssi => return up.rssi.and_then(num),
        Root::Snr => return up.snr.and_then(num),
        Root::Object => {}
    }
    let mut v = up.object?;
    for seg in path {
        v = match v {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(match v {
        Value::Number(n) => Val::Num(n.as_f64()?),
        Value::String(s) => Val::Str(s.clone()),
        Value::Bool(b) => Val::Bool(*b),
        Value::Null => Val::Null,
        _ => Val::Other,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Sym(&'static str),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(n) => write!(f, "number {n}"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::Ident(s) => write!(f, "name {s:?}"),
            Tok::Sym(s) => write!(f, "{s:?}"),
        }
    }
}

const SYMBOLS: [&str; 18] = [
    "||", "&&", "==", "!=", "<=", ">=", "<", ">", "!", "+", "-", "*", "/", "(", ")", ".", "[", "]",
];

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                // `object.sensor.1.value`: a dot followed by a letter ends the number.
                if chars[i] == '.' && !chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                    break;
                }
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let n: f64 = text.parse().map_err(|_| ExprError {
                at: start,
                message: format!("{text:?} is not a number"),
            })?;
            out.push((start, Tok::Num(n)));
        } else if c == '"' || c == '\'' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => {
                        return Err(ExprError {
                            at: start,
                            message: "string without its closing quote".into(),
                        })
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some(&e @ ('\\' | '"' | '\'')) => s.push(e),
                            Some('n') => s.push('\n'),
                            _ => {
                                return Err(ExprError {
                                    at: i,
                                    message: "unknown escape (use \\\\, \\\", \\' or \\n)".into(),
                                })
                            }
                        }
                        i += 2;
                    }
                    Some(&other) => {
                        s.push(other);
                        i += 1;
                    }
                }
            }
            out.push((start, Tok::Str(s)));
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push((start, Tok::Ident(chars[start..i].iter().collect())));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let sym = SYMBOLS
                .iter()
                .find(|s| rest.starts_with(**s))
                .ok_or_else(|| ExprError {
                    at: start,
                    message: format!("unexpected character {c:?}"),
                })?;
            i += sym.chars().count();
            out.push((start, Tok::Sym(sym)));
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Tok)>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<(usize, &Tok)> {
        self.tokens.get(self.pos).map(|(at, t)| (*at, t))
    }

    fn end(&self) -> usize {
        self.tokens.last().map_or(0, |(at, _)| at + 1)
    }

    fn eat(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some((_, Tok::Sym(s))) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn deeper(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError {
                at: self.peek().map_or(self.end(), |(at, _)| at),
                message: format!("nested more than {MAX_DEPTH} levels deep"),
            });
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        self.deeper()?;
        let mut e = self.and()?;
        while self.eat("||") {
            e = Expr::Bin(Op::Or, Box::new(e), Box::new(self.and()?));
        }
        self.depth -= 1;
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.not()?;
        while self.eat("&&") {
            e = Expr::Bin(Op::And, Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, ExprError> {
        if self.eat("!") {
            self.deeper()?;
            let e = Expr::Not(Box::new(self.not()?));
            self.depth -= 1;
            return Ok(e);
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, ExprError> {
        let a = self.sum()?;
        for (sym, op) in [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.eat(sym) {
                let b = self.sum()?;
                return Ok(Expr::Bin(op, Box::new(a), Box::new(b)));
            }
        }
        Ok(a)
    }

    fn sum(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.product()?;
        loop {
            let op = if self.eat("+") {
                Op::Add
            } else if self.eat("-") {
                Op::Sub
            } else {
                return Ok(e);
            };
            e = Expr::Bin(op, Box::new(e), Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.unary()?;
        loop {
            let op = if self.eat("*") {
                Op::Mul
            } else if self.eat("/") {
                Op::Div
            } else {
                return Ok(e);
            };
            e = Expr::Bin(op, Box::new(e), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.eat("-") {
            self.deeper()?;
            let e = Expr::Neg(Box::new(self.unary()?));
            self.depth -= 1;
            return Ok(e);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let end = self.end();
        let Some((at, tok)) = self.peek().map(|(a, t)| (a, t.clone())) else {
            return Err(ExprError {
                at: end,
                message: "the expression ends where a value was expected".into(),
            });
        };
        self.pos += 1;
        match tok {
            Tok::Num(n) => Ok(Expr::Lit(Lit::Num(n))),
            Tok::Str(s) => Ok(Expr::Lit(Lit::Str(s))),
            Tok::Sym("(") => {
                let e = self.or()?;
                if !self.eat(")") {
                    return Err(ExprError {
                        at: self.peek().map_or(end, |(a, _)| a),
                        message: "missing \")\"".into(),
                    });
                }
                Ok(e)
            }
            Tok::Ident(name) => {
                let root = match name.as_str() {
                    "true" => return Ok(Expr::Lit(Lit::Bool(true))),
                    "false" => return Ok(Expr::Lit(Lit::Bool(false))),
                    "null" => return Ok(Expr::Lit(Lit::Null)),
                    "object" => Root::Object,
                    "fPort" => Root::FPort,
                    "fCnt" => Root::FCnt,
                    "dr" => Root::Dr,
                    "rssi" => Root::Rssi,
                    "snr" => Root::Snr,
                    other => {
                        return Err(ExprError {
                            at,
                            message: format!(
                                "unknown name {other:?} (paths start with object, fPort, fCnt, dr, rssi or snr)"
                            ),
                        })
                    }
                };
                let mut path = Vec::new();
                loop {
                    if self.eat(".") {
                        match self.peek().map(|(a, t)| (a, t.clone())) {
                            Some((_, Tok::Ident(s))) => path.push(s),
                            Some((_, Tok::Num(n))) if n.fract() == 0.0 && n >= 0.0 => {
                                path.push(format!("{n}"))
                            }
                            other => {
                                return Err(ExprError {
                                    at: other.map_or(end, |(a, _)| a),
                                    message: "a field name must follow \".\"".into(),
                                })
                            }
                        }
                        self.pos += 1;
                    } else if self.eat("[") {
                        match self.peek().map(|(a, t)| (a, t.clone())) {
                            Some((_, Tok::Str(s))) => path.push(s),
                            Some((_, Tok::Num(n))) if n.fract() == 0.0 && n >= 0.0 => {
                                path.push(format!("{n}"))
                            }
                            other => {
                                return Err(ExprError {
                                    at: other.map_or(end, |(a, _)| a),
                                    message: "a quoted name or an index must follow \"[\"".into(),
                                })
                            }
                        }
                        self.pos += 1;
                        if !self.eat("]") {
                            return Err(ExprError {
                                at: self.peek().map_or(end, |(a, _)| a),
                                message: "missing \"]\"".into(),
                            });
                        }
                    } else {
                        break;
                    }
                }
                if root != Root::Object && !path.is_empty() {
                    return Err(ExprError {
                        at,
                        message: format!("{name} is a number and has no fields"),
                    });
                }
                Ok(Expr::Path(root, path))
            }
            Tok::Sym(s) => Err(ExprError {
                at,
                message: format!("unexpected {s:?} where a value was expected"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn up(object: &Value) -> Uplink<'_> {
        Uplink {
            object: Some(object),
            f_port: Some(2),
            f_cnt: 7,
            dr: 5,
            rssi: Some(-80.0),
            snr: Some(7.5),
        }
    }

    fn t(src: &str, object: &Value) -> Option<bool> {
        Expr::parse(src)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .test(&up(object))
    }

    #[test]
    fn comparisons_and_logic() {
        let o = json!({"temperature": 31.5, "door": "open", "ok": true,
                       "temperatureSensor": {"1": 22.5}, "list": [1, 2, 3], "n": null});
        assert_eq!(t("object.temperature > 30", &o), Some(true));
        assert_eq!(t("object.temperature > 31.5", &o), Some(false));
        assert_eq!(t("object.temperature >= 31.5", &o), Some(true));
        assert_eq!(
            t("object.temperature < 30 || object.door == 'open'", &o),
            Some(true)
        );
        assert_eq!(t("object.temperature > 30 && fPort == 2", &o), Some(true));
        assert_eq!(t("!(object.temperature > 30)", &o), Some(false));
        assert_eq!(t("object.temperatureSensor.1 < 23", &o), Some(true));
        assert_eq!(t("object.temperatureSensor[\"1\"] == 22.5", &o), Some(true));
        assert_eq!(t("object.list[2] == 3", &o), Some(true));
        assert_eq!(t("object.list.0 == 1", &o), Some(true));
        assert_eq!(t("object.ok", &o), Some(true));
        assert_eq!(t("object.ok == false", &o), Some(false));
        assert_eq!(t("object.n == null", &o), Some(true));
        assert_eq!(t("object.temperature * 1.8 + 32 > 88", &o), Some(true));
        assert_eq!(t("-object.temperature < -31", &o), Some(true));
        assert_eq!(
            t("rssi < -70 && snr > 5 && dr == 5 && fCnt == 7", &o),
            Some(true)
        );
        assert_eq!(t("1e2 == 100", &o), Some(true));
        assert_eq!(t("2 - 1 - 1 == 0", &o), Some(true), "left associative");
        assert_eq!(
            t("object.door > 'closed'", &o),
            Some(true),
            "strings compare"
        );
    }

    #[test]
    fn missing_fields_are_unknown_not_false() {
        let o = json!({"temperature": 31.5});
        assert_eq!(t("object.humidity > 50", &o), None);
        assert_eq!(t("object.temperature.x > 50", &o), None);
        assert_eq!(t("object.temperature > 'x'", &o), None, "unlike types");
        assert_eq!(t("object.temperature / 0 > 1", &o), None, "not finite");
        // Kleene logic: a known false or true decides.
        assert_eq!(
            t("object.humidity > 50 && object.temperature < 0", &o),
            Some(false)
        );
        assert_eq!(
            t("object.humidity > 50 || object.temperature > 0", &o),
            Some(true)
        );
        assert_eq!(
            t("object.humidity > 50 || object.temperature < 0", &o),
            None
        );
        let none = Uplink::default();
        assert_eq!(Expr::parse("object.t > 1").unwrap().test(&none), None);
        assert_eq!(Expr::parse("fPort == 1").unwrap().test(&none), None);
        assert_eq!(
            Expr::parse("object.temperature").unwrap().test(&up(&o)),
            None,
            "a number is no condition"
        );
    }

    #[test]
    fn refusals_name_the_place() {
        for (src, at, needle) in [
            ("object.t >", 10, "ends where a value"),
            ("temperature > 3", 0, "unknown name"),
            ("object.t > 3 3", 13, "after a complete expression"),
            ("(object.t > 3", 13, "missing \")\""),
            ("object.t ~ 3", 9, "unexpected character"),
            ("object. > 3", 8, "field name must follow"),
            ("object['x' > 3", 11, "missing \"]\""),
            ("object.t == 'x", 12, "closing quote"),
            ("fPort.x == 1", 0, "has no fields"),
            ("object.t = 3", 9, "unexpected character"),
        ] {
            let e = Expr::parse(src).unwrap_err();
            assert_eq!(e.at, at, "{src}: {e}");
            assert!(e.message.contains(needle), "{src}: {e}");
        }
        let deep = format!("{}1{}", "(".repeat(40), ")".repeat(40));
        assert!(Expr::parse(&deep).unwrap_err().message.contains("nested"));
        let long = format!("object.t > {}", "1".repeat(MAX_LEN));
        assert!(Expr::parse(&long).unwrap_err().message.contains("longer"));
        let nots = format!("{}true", "!".repeat(100));
        assert!(Expr::parse(&nots).is_err());
    }

    #[test]
    fn reads_an_up_event_body() {
        let body = json!({"fPort": 3, "fCnt": 9, "dr": 2, "object": {"t": 1},
            "rxInfo": [{"rssi": -100, "snr": 1.0}, {"rssi": -60, "snr": 9.5}]});
        let u = Uplink::from_up_event(&body);
        assert_eq!((u.f_port, u.f_cnt, u.dr), (Some(3), 9, 2));
        assert_eq!((u.rssi, u.snr), (Some(-60.0), Some(9.5)));
        assert_eq!(
            Expr::parse("object.t == 1 && snr > 9").unwrap().test(&u),
            Some(true)
        );
    }
}
