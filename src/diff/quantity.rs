//! Kubernetes `resource.Quantity`: parsing, value comparison, and the exact
//! string the API server writes back.
//!
//! Quantities are the main source of false drift: Git says `cpu: 0.5` or
//! `memory: 1024Mi`, the server stores and returns `"500m"` and `"1Gi"`. This
//! module reproduces `k8s.io/apimachinery/pkg/api/resource` (quantity.go,
//! amount.go, suffix.go) as shipped with Kubernetes 1.28–1.33, including its
//! quirks, so that a desired value can be rewritten to what a server round trip
//! would return:
//!
//! - the suffix family (BinarySI, DecimalSI, DecimalExponent) is remembered;
//! - output is canonical: no fractional digits, decimal exponents that are
//!   multiples of 3, the largest suffix that keeps the value exact; BinarySI
//!   values below 1024 or with a fraction fall back to DecimalSI;
//! - `ParseQuantity` keeps the input text verbatim when it is already in a
//!   canonical shape (so `"1e3"`, `"12E-3"` and even `"+1k"` come back as sent);
//! - parsing rounds a non-zero value up to nano, and caps BinarySI at 2^63-1;
//! - a DecimalSI value whose exponent is beyond `E` is written without its
//!   exponent (`"1000E"` comes back as `"1"`), a 1.28–1.33 bug fixed upstream
//!   only later (kubernetes PR #140459).
//!
//! No floating point is used: values are exact decimal digit strings.

use serde_json::Value;
use std::cmp::Ordering;
use std::fmt;

/// The suffix family a quantity was written in; the server keeps it when it
/// serialises the value (`Quantity.Format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `e`/`E` exponents, e.g. `12e6`.
    DecimalExponent,
    /// `Ki`, `Mi`, … `Ei` (powers of 1024).
    BinarySI,
    /// `n`, `u`, `m`, none, `k`, `M`, … `E` (powers of 1000).
    DecimalSI,
}

/// 2^63-1, the cap `ParseQuantity` applies to BinarySI values (`maxAllowed`).
const MAX_ALLOWED: &[u8] = b"9223372036854775807";

/// An exact Kubernetes quantity.
///
/// Equality and ordering compare numeric values only, so
/// `parse("1e3") == parse("1k") == parse("1000")`; [`Quantity::canonical`]
/// gives the text the API server would return.
#[derive(Clone, Debug)]
pub struct Quantity {
    negative: bool,
    /// Decimal digits (0..=9) of the magnitude, most significant first, with
    /// neither leading nor trailing zeros; empty for zero.
    digits: Vec<u8>,
    /// The value is `digits * 10^exponent`.
    exponent: i64,
    format: Format,
    /// The input text, when `ParseQuantity` would reuse it as the serialised
    /// form (Go's cached `Quantity.s`).
    literal: Option<String>,
}

impl Quantity {
    /// Parses `s` exactly as `resource.ParseQuantity` does; `None` where it
    /// returns an error. Leading or trailing whitespace is an error here (JSON
    /// decoding trims it first, see [`from_json`]).
    pub fn parse(s: &str) -> Option<Quantity> {
        if s.is_empty() {
            return None;
        }
        if s == "0" {
            let mut zero = Quantity::zero(Format::DecimalSI);
            zero.literal = Some(s.to_string());
            return Some(zero);
        }
        let scanned = scan(s.as_bytes())?;
        let (base, exponent, format) = interpret(scanned.suffix)?;
        if let Some(fast) = parse_fast(s, &scanned, exponent, format) {
            return fast;
        }
        parse_slow(&scanned, base, exponent, format)
    }

    /// The string the API server writes for this quantity (`Quantity.String`).
    pub fn canonical(&self) -> String {
        if let Some(literal) = &self.literal {
            return literal.clone();
        }
        if self.digits.is_empty() {
            return "0".to_string();
        }
        let sign = if self.negative { "-" } else { "" };
        if self.format == Format::BinarySI && !self.below_1024() && self.exponent >= 0 {
            // Whole values of 1024 or more keep the binary suffix
            // (CanonicalizeBytes / AsCanonicalBase1024Bytes).
            if let Some(mut value) = self.magnitude_u128() {
                let mut power = 0usize;
                while value >= 1024 && value % 1024 == 0 {
                    value /= 1024;
                    power += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
                    .get(power)
                    .copied()
                    .unwrap_or("");
                return format!("{sign}{value}{suffix}");
            }
        }
        // Decimal output (AsCanonicalBytes): trailing zeros are already in the
        // exponent; lower it to a multiple of 3 by padding the mantissa.
        let pad = self.exponent.rem_euclid(3);
        let exponent = self.exponent - pad;
        let mut text = String::with_capacity(self.digits.len() + 8);
        text.push_str(sign);
        text.extend(self.digits.iter().map(|d| char::from(b'0' + d)));
        for _ in 0..pad {
            text.push('0');
        }
        match self.format {
            Format::DecimalExponent => {
                if exponent != 0 {
                    text.push('e');
                    text.push_str(&exponent.to_string());
                }
            }
            // BinarySI lands here when below 1024 or fractional.
            Format::DecimalSI | Format::BinarySI => text.push_str(decimal_si_suffix(exponent)),
        }
        text
    }

    /// Rounds up (away from zero) to milli, as `SetDefaults_ResourceList` does
    /// for container, PVC, LimitRange and ResourceQuota resource lists
    /// (`RoundUp(-3)`): `"0.1m"` becomes `"1m"`. An exact value is untouched,
    /// verbatim text included.
    pub fn round_up_milli(&self) -> Quantity {
        let mut rounded = self.clone();
        if !self.digits.is_empty() && self.exponent < -3 {
            rounded.literal = None;
            rounded.round_up_to(-3);
        }
        rounded
    }

    /// The suffix family the value is written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    fn zero(format: Format) -> Quantity {
        Quantity {
            negative: false,
            digits: Vec::new(),
            exponent: 0,
            format,
            literal: None,
        }
    }

    /// Builds a normalised quantity from raw digits (any leading or trailing
    /// zeros).
    fn from_digits(negative: bool, mut digits: Vec<u8>, mut exponent: i64, format: Format) -> Self {
        let leading = digits.iter().take_while(|d| **d == 0).count();
        digits.drain(..leading);
        while digits.last() == Some(&0) {
            digits.pop();
            exponent += 1;
        }
        if digits.is_empty() {
            return Quantity::zero(format);
        }
        Quantity {
            negative,
            digits,
            exponent,
            format,
            literal: None,
        }
    }

    /// Rounds the magnitude up to `10^scale` (inf.Dec `Round` with `RoundUp`).
    fn round_up_to(&mut self, scale: i64) {
        if self.digits.is_empty() || self.exponent >= scale {
            return;
        }
        // Normalised digits end in a non-zero digit, so whatever is dropped
        // is non-zero and the kept part always goes up by one unit.
        let drop = scale.saturating_sub(self.exponent);
        let keep = usize::try_from(drop)
            .ok()
            .and_then(|d| self.digits.len().checked_sub(d))
            .unwrap_or(0);
        let mut digits = self.digits[..keep].to_vec();
        increment(&mut digits);
        let rounded = Quantity::from_digits(self.negative, digits, scale, self.format);
        self.digits = rounded.digits;
        self.exponent = rounded.exponent;
    }

    /// Number of digits before the decimal point (may be zero or negative).
    fn integer_digits(&self) -> i64 {
        (self.digits.len() as i64).saturating_add(self.exponent)
    }

    fn below_1024(&self) -> bool {
        self.cmp_magnitude_digits(&[1, 0, 2, 4], 0) == Ordering::Less
    }

    /// Compares |self| with `digits * 10^exponent` (normalised digits).
    fn cmp_magnitude_digits(&self, digits: &[u8], exponent: i64) -> Ordering {
        match (self.digits.is_empty(), digits.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        let other_int = (digits.len() as i64).saturating_add(exponent);
        self.integer_digits()
            .cmp(&other_int)
            // Same magnitude order: compare digit by digit; a longer digit
            // string is larger because normalised digits end in non-zero.
            .then_with(|| self.digits.as_slice().cmp(digits))
    }

    fn magnitude_u128(&self) -> Option<u128> {
        let mut value: u128 = 0;
        for d in &self.digits {
            value = value.checked_mul(10)?.checked_add(u128::from(*d))?;
        }
        for _ in 0..self.exponent {
            value = value.checked_mul(10)?;
        }
        Some(value)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        let sign = |q: &Quantity| match (q.digits.is_empty(), q.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        };
        let (a, b) = (sign(self), sign(other));
        if a != b {
            return a.cmp(&b);
        }
        let magnitude = self.cmp_magnitude_digits(&other.digits, other.exponent);
        if a < 0 {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl std::str::FromStr for Quantity {
    type Err = InvalidQuantity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s).ok_or(InvalidQuantity)
    }
}

/// The text is not a quantity `ParseQuantity` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidQuantity;

impl fmt::Display for InvalidQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid quantity")
    }
}

impl std::error::Error for InvalidQuantity {}

/// A quantity as it appears in a manifest: a JSON string, or a JSON number
/// (`cpu: 1`, `cpu: 0.5`, `memory: 1073741824` in YAML). `None` for anything
/// else or an invalid quantity.
///
/// Strings are trimmed first, as `Quantity.UnmarshalJSON` does. Numbers are
/// read from the text a Go client (kubectl) sends for them: integers as is,
/// floats as `encoding/json` formats a float64 (exponent form below 1e-6 and
/// from 1e21 on), so `0.5` is `"500m"` and `1.0` is `"1"`.
pub fn from_json(value: &Value) -> Option<Quantity> {
    match value {
        Value::String(s) => Quantity::parse(s.trim()),
        Value::Number(n) => Quantity::parse(&go_number_text(n)?),
        _ => None,
    }
}

/// The canonical string the API server would return for a manifest value, or
/// `None` if it is not a quantity. Not rounded to milli: see
/// [`Quantity::round_up_milli`] for resource lists.
pub fn canonical_json(value: &Value) -> Option<String> {
    from_json(value).map(|q| q.canonical())
}

/// Whether two manifest values denote the same quantity (numeric equality,
/// whatever the notation: `"1Gi"` and `1073741824` are the same). False if
/// either is not a quantity.
pub fn same_quantity(a: &Value, b: &Value) -> bool {
    match (from_json(a), from_json(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The text Go's `encoding/json` writes for a number decoded from YAML/JSON
/// (int64, uint64 or float64), i.e. what the API server receives from kubectl.
fn go_number_text(n: &serde_json::Number) -> Option<String> {
    if let Some(i) = n.as_i64() {
        return Some(i.to_string());
    }
    if let Some(u) = n.as_u64() {
        return Some(u.to_string());
    }
    let f = n.as_f64()?;
    if !f.is_finite() {
        return None;
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // strconv 'e' format: "1e+21", "1.5e-07" cleaned up to "1.5e-7".
        let text = format!("{f:e}");
        return Some(match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => text,
        });
    }
    // Shortest round-trip digits in positional form, like strconv 'f', -1.
    Some(format!("{f}"))
}

fn decimal_si_suffix(exponent: i64) -> &'static str {
    match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        // 0, and exponents without a DecimalSI suffix: 1.28–1.33 ignore the
        // failed suffix lookup and emit the bare mantissa.
        _ => "",
    }
}

fn increment(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d == 9 {
            *d = 0;
        } else {
            *d += 1;
            return;
        }
    }
    digits.insert(0, 1);
}

/// The pieces `parseQuantityString` splits a quantity into.
struct Scanned<'a> {
    positive: bool,
    /// Sign, digits and decimal point, as handed to `inf.Dec.SetString`.
    value: &'a [u8],
    /// Integer digits without leading zeros ("0" if none).
    num: &'a [u8],
    /// Fraction digits.
    denom: &'a [u8],
    suffix: &'a [u8],
}

/// `parseQuantityString`: a byte scanner, deliberately as permissive as Go's
/// (`"."`, `"-"` and `"Ki"` all scan, and parse as zero).
fn scan(s: &[u8]) -> Option<Scanned<'_>> {
    let end = s.len();
    let mut positive = true;
    let mut pos = 0;
    match s.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    // Leading zeros.
    while pos < end && s[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Some(Scanned {
            positive,
            value: b"0",
            num: b"0",
            denom: b"",
            suffix: b"",
        });
    }
    // Integer digits.
    let start = pos;
    while pos < end && s[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos >= end {
        return Some(Scanned {
            positive,
            value: s,
            num: &s[start..],
            denom: b"",
            suffix: b"",
        });
    }
    let num: &[u8] = if pos == start { b"0" } else { &s[start..pos] };
    // Fraction digits.
    let mut denom: &[u8] = b"";
    if s[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && s[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos >= end {
            return Some(Scanned {
                positive,
                value: s,
                num,
                denom: &s[start..],
                suffix: b"",
            });
        }
        denom = &s[start..pos];
    }
    let value = &s[..pos];
    // Suffix: letters, then an optional sign and digits.
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&s[pos]) {
        pos += 1;
    }
    if pos < end && (s[pos] == b'-' || s[pos] == b'+') {
        pos += 1;
    }
    while pos < end {
        if !s[pos].is_ascii_digit() {
            return None;
        }
        pos += 1;
    }
    Some(Scanned {
        positive,
        value,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

/// `suffixer.interpret`: base, exponent and format of a suffix.
fn interpret(suffix: &[u8]) -> Option<(u32, i32, Format)> {
    let decimal = |e| Some((10, e, Format::DecimalSI));
    let binary = |e| Some((2, e, Format::BinarySI));
    match suffix {
        b"" => decimal(0),
        b"n" => decimal(-9),
        b"u" => decimal(-6),
        b"m" => decimal(-3),
        b"k" => decimal(3),
        b"M" => decimal(6),
        b"G" => decimal(9),
        b"T" => decimal(12),
        b"P" => decimal(15),
        b"E" => decimal(18),
        b"Ki" => binary(10),
        b"Mi" => binary(20),
        b"Gi" => binary(30),
        b"Ti" => binary(40),
        b"Pi" => binary(50),
        b"Ei" => binary(60),
        [b'e' | b'E', rest @ ..] if !rest.is_empty() => {
            // strconv.ParseInt(rest, 10, 64), then Go's int32() conversion,
            // which wraps.
            let parsed: i64 = std::str::from_utf8(rest).ok()?.parse().ok()?;
            Some((10, parsed as i32, Format::DecimalExponent))
        }
        _ => None,
    }
}

/// `ParseQuantity`'s int64 fast path. `None`: not applicable, take the slow
/// path; `Some(None)`: a parse error.
fn parse_fast(
    text: &str,
    scanned: &Scanned<'_>,
    exponent: i32,
    format: Format,
) -> Option<Option<Quantity>> {
    let digits = scanned.num.len() + scanned.denom.len();
    let (mut scale, precision, mantissa): (i64, i64, i64) = match format {
        Format::DecimalExponent | Format::DecimalSI => (i64::from(exponent), 18 - digits as i64, 1),
        Format::BinarySI if scanned.denom.is_empty() && (0..63).contains(&exponent) => {
            // ~3 decimal digits per factor of 1024.
            let precision = 15 - scanned.num.len() as i64 - i64::from(exponent) * 3 / 10 - 1;
            (0, precision, 1i64 << exponent)
        }
        Format::BinarySI => (0, -1, 1),
    };
    if precision < 0 {
        return None;
    }
    scale -= scanned.denom.len() as i64;
    if scale < -9 {
        return None;
    }
    let shifted: Vec<u8> = scanned.num.iter().chain(scanned.denom).copied().collect();
    let Some(value) = std::str::from_utf8(&shifted)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    else {
        return Some(None);
    };
    let result = value.checked_mul(mantissa)?;
    // Reuse the input text when it is already canonical.
    let canonical_text = match format {
        Format::BinarySI => exponent % 10 == 0 && value & 0x07 != 0,
        _ => scale % 3 == 0 && !shifted.ends_with(b"000") && shifted.first() != Some(&b'0'),
    };
    let magnitude = result
        .unsigned_abs()
        .to_string()
        .bytes()
        .map(|b| b - b'0')
        .collect();
    let mut q = Quantity::from_digits(!scanned.positive, magnitude, scale, format);
    if canonical_text {
        q.literal = Some(text.to_string());
    }
    Some(Some(q))
}

/// `ParseQuantity`'s arbitrary-precision path (inf.Dec): round up to nano,
/// cap BinarySI at 2^63-1, and turn a BinarySI fraction of 1 into DecimalSI.
fn parse_slow(scanned: &Scanned<'_>, base: u32, exponent: i32, format: Format) -> Option<Quantity> {
    // inf.Dec.SetString needs at least one digit.
    if !scanned.value.iter().any(u8::is_ascii_digit) {
        return None;
    }
    let mut digits: Vec<u8> = scanned
        .value
        .iter()
        .filter(|c| c.is_ascii_digit())
        .map(|c| c - b'0')
        .collect();
    let fraction = scanned
        .value
        .iter()
        .position(|c| *c == b'.')
        .map_or(0, |dot| scanned.value.len() - dot - 1);
    let mut scale = -(fraction as i64);
    if base == 10 {
        scale += i64::from(exponent);
    } else {
        multiply_small(&mut digits, 1u64 << exponent.clamp(0, 63));
    }
    let mut q = Quantity::from_digits(!scanned.positive, digits, scale, format);
    q.round_up_to(-9);
    if format == Format::BinarySI {
        let max: Vec<u8> = MAX_ALLOWED.iter().map(|c| c - b'0').collect();
        if q.cmp_magnitude_digits(&max, 0) == Ordering::Greater {
            q = Quantity::from_digits(q.negative, max, 0, format);
        }
        if !q.digits.is_empty() && q.integer_digits() <= 0 {
            q.format = Format::DecimalSI;
        }
    }
    Some(q)
}

/// `digits *= factor` on a big-endian decimal digit vector.
fn multiply_small(digits: &mut Vec<u8>, factor: u64) {
    let mut carry: u128 = 0;
    for d in digits.iter_mut().rev() {
        let product = u128::from(*d) * u128::from(factor) + carry;
        *d = (product % 10) as u8;
        carry = product / 10;
    }
    while carry > 0 {
        digits.insert(0, (carry % 10) as u8);
        carry /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|| panic!("{s:?} should parse"))
    }

    fn canon(s: &str) -> String {
        q(s).canonical()
    }

    /// `mantissa * 10^exponent`, for expected values.
    fn dec(mantissa: i128, exponent: i64, format: Format) -> Quantity {
        let digits = mantissa
            .unsigned_abs()
            .to_string()
            .bytes()
            .map(|b| b - b'0')
            .collect();
        Quantity::from_digits(mantissa < 0, digits, exponent, format)
    }

    #[test]
    fn reference_table() {
        // apiserver-defaults.md §3.
        for (input, output) in [
            ("0.5", "500m"),
            ("1.5Gi", "1536Mi"),
            ("500m", "500m"),
            ("2048Ki", "2Mi"),
            ("1000m", "1"),
            ("1000", "1k"),
            ("1", "1"),
            ("1000M", "1G"),
            ("1024Mi", "1Gi"),
            ("0.5Gi", "512Mi"),
            ("1Gi", "1Gi"),
            ("1e4", "10e3"),
            ("1e3", "1e3"),
            ("1073741824", "1073741824"),
            ("1.5", "1500m"),
        ] {
            assert_eq!(canon(input), output, "{input}");
        }
    }

    #[test]
    fn parse_values_and_formats() {
        use Format::*;
        // TestQuantityParse in quantity_test.go.
        for (input, mantissa, exponent, format) in [
            ("0", 0, 0, DecimalSI),
            ("0n", 0, 0, DecimalSI),
            ("0u", 0, 0, DecimalSI),
            ("0m", 0, 0, DecimalSI),
            ("0Ki", 0, 0, BinarySI),
            ("0k", 0, 0, DecimalSI),
            ("0Mi", 0, 0, BinarySI),
            ("0M", 0, 0, DecimalSI),
            ("0Gi", 0, 0, BinarySI),
            ("0G", 0, 0, DecimalSI),
            ("0Ti", 0, 0, BinarySI),
            ("0T", 0, 0, DecimalSI),
            ("1", 1, 0, DecimalSI),
            ("1Ki", 1024, 0, BinarySI),
            ("8Ki", 8 * 1024, 0, BinarySI),
            ("7Mi", 7 << 20, 0, BinarySI),
            ("6Gi", 6 << 30, 0, BinarySI),
            ("5Ti", 5 << 40, 0, BinarySI),
            ("4Pi", 4 << 50, 0, BinarySI),
            ("3Ei", 3 << 60, 0, BinarySI),
            ("10Ti", 10 << 40, 0, BinarySI),
            ("100Ti", 100 << 40, 0, BinarySI),
            ("5n", 5, -9, DecimalSI),
            ("4u", 4, -6, DecimalSI),
            ("3m", 3, -3, DecimalSI),
            ("9", 9, 0, DecimalSI),
            ("8k", 8, 3, DecimalSI),
            ("50k", 5, 4, DecimalSI),
            ("7M", 7, 6, DecimalSI),
            ("6G", 6, 9, DecimalSI),
            ("5T", 5, 12, DecimalSI),
            ("40T", 4, 13, DecimalSI),
            ("300T", 3, 14, DecimalSI),
            ("2P", 2, 15, DecimalSI),
            ("1E", 1, 18, DecimalSI),
            ("1E-3", 1, -3, DecimalExponent),
            ("1e3", 1, 3, DecimalExponent),
            ("1E6", 1, 6, DecimalExponent),
            ("1e9", 1, 9, DecimalExponent),
            ("1E12", 1, 12, DecimalExponent),
            ("1e15", 1, 15, DecimalExponent),
            ("1E18", 1, 18, DecimalExponent),
            ("1e14", 1, 14, DecimalExponent),
            ("1e13", 1, 13, DecimalExponent),
            ("100.035k", 100035, 0, DecimalSI),
            ("0.001", 1, -3, DecimalSI),
            ("0.0005k", 5, -1, DecimalSI),
            ("0.005", 5, -3, DecimalSI),
            ("0.05", 5, -2, DecimalSI),
            ("0.5", 5, -1, DecimalSI),
            ("0.00050k", 5, -1, DecimalSI),
            ("0.00500", 5, -3, DecimalSI),
            ("0.05000", 5, -2, DecimalSI),
            ("0.50000", 5, -1, DecimalSI),
            ("0.5e0", 5, -1, DecimalExponent),
            ("0.5e-1", 5, -2, DecimalExponent),
            ("0.5e-2", 5, -3, DecimalExponent),
            ("10.035M", 10035, 3, DecimalSI),
            ("1.2e3", 12, 2, DecimalExponent),
            ("1.3E+6", 13, 5, DecimalExponent),
            ("1.40e9", 14, 8, DecimalExponent),
            ("1.53E12", 153, 10, DecimalExponent),
            ("1.6e15", 16, 14, DecimalExponent),
            ("1.7E18", 17, 17, DecimalExponent),
            ("9.01", 901, -2, DecimalSI),
            ("8.1k", 81, 2, DecimalSI),
            ("7.123456M", 7123456, 0, DecimalSI),
            ("6.987654321G", 6987654321, 0, DecimalSI),
            ("5.444T", 5444, 9, DecimalSI),
            ("40.1T", 401, 11, DecimalSI),
            ("300.2T", 3002, 11, DecimalSI),
            ("2.5P", 25, 14, DecimalSI),
            ("1.01E", 101, 16, DecimalSI),
            // Things that saturate or round.
            ("3.001n", 4, -9, DecimalSI),
            ("1.1E-9", 2, -9, DecimalExponent),
            ("0.0000000001", 1, -9, DecimalSI),
            ("0.0000000005", 1, -9, DecimalSI),
            ("0.00000000050", 1, -9, DecimalSI),
            ("0.5e-9", 1, -9, DecimalExponent),
            ("0.9n", 1, -9, DecimalSI),
            ("0.00000012345", 124, -9, DecimalSI),
            ("0.00000012354", 124, -9, DecimalSI),
            ("9Ei", i64::MAX as i128, 0, BinarySI),
            ("9223372036854775807Ki", i64::MAX as i128, 0, BinarySI),
            ("12E", 12, 18, DecimalSI),
            // Fractional binary.
            ("100.035Ki", 10243584, -2, BinarySI),
            ("0.5Mi", 1 << 19, 0, BinarySI),
            ("0.05Gi", 536870912, -1, BinarySI),
            ("0.025Ti", 274877906944, -1, BinarySI),
            // Written by trolls.
            ("0.000000000001Ki", 2, -9, DecimalSI),
            (".001", 1, -3, DecimalSI),
            (".0001k", 100, -3, DecimalSI),
            ("1.", 1, 0, DecimalSI),
            ("1.G", 1, 9, DecimalSI),
        ] {
            let expected = dec(mantissa, exponent, format);
            for (prefix, sign) in [("", 1), ("+", 1), ("-", -1)] {
                let text = format!("{prefix}{input}");
                let got = q(&text);
                let want = dec(mantissa * sign, exponent, format);
                assert_eq!(got, want, "{text}: got {got}, want {want}");
                assert_eq!(got.format(), expected.format(), "{text}");
            }
        }
    }

    #[test]
    fn scanner_corner_cases_parse_as_zero() {
        for (input, format) in [
            (".", Format::DecimalSI),
            ("-", Format::DecimalSI),
            ("+", Format::DecimalSI),
            ("-.", Format::DecimalSI),
            ("m", Format::DecimalSI),
            ("Ki", Format::BinarySI),
            ("e3", Format::DecimalExponent),
        ] {
            let got = q(input);
            assert!(got.is_zero(), "{input}");
            assert_eq!(got.format(), format, "{input}");
            assert_eq!(got.canonical(), "0", "{input}");
        }
    }

    #[test]
    fn invalid_inputs() {
        for input in [
            "",
            "1.1.M",
            "1+1.0M",
            "0.1mi",
            "0.1am",
            "aoeu",
            ".5i",
            "1i",
            "-3.01i",
            "-3.01e-",
            " 1",
            "1 ",
            "1K",
            "1ki",
            "1e",
            "1E+",
            "1Mi5",
            "e-20",
            "1e99999999999999999999",
            "1,5",
            "½",
            "1µ",
        ] {
            assert!(
                Quantity::parse(input).is_none(),
                "{input:?} should not parse"
            );
        }
    }

    #[test]
    fn canonical_strings() {
        // TestQuantityString / TestQuantityParseEmit (alternate spellings).
        for (input, output) in [
            ("1024Mi", "1Gi"),
            ("307200Ki", "300Mi"),
            ("6Ki", "6Ki"),
            ("1025024Mi", "1001Gi"),
            ("1024Gi", "1Ti"),
            ("0.5", "500m"),
            ("1000M", "1G"),
            ("0.001T", "1G"),
            ("1000u", "1m"),
            ("1.08", "1080m"),
            ("1080000000n", "1080m"),
            ("1.5e0", "1500e-3"),
            (".001e12", "1e9"),
            ("0.001e0", "1e-3"),
            ("1000e-12", "1e-9"),
            ("00", "0"),
            ("1Ki", "1Ki"),
            ("1Mi", "1Mi"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("5000m", "5"),
            ("1025Ki", "1025Ki"),
            ("1.5Ki", "1536"),
            ("0.5Ki", "512"),
            ("1000Ki", "1000Ki"),
            ("1.1Ki", "1126400m"),
            ("100k", "100k"),
            ("1500", "1500"),
            ("3000", "3k"),
            ("12E-3", "12E-3"),
            ("12e-4", "1200e-6"),
            ("1e-3", "1e-3"),
            ("1e0", "1e0"),
            ("80e-3", "80e-3"),
            ("1n", "1n"),
            ("1080u", "1080u"),
            ("10800n", "10800n"),
            ("-1.5Gi", "-1536Mi"),
            ("-0.5", "-500m"),
            ("-0", "0"),
            ("-0Ki", "0"),
            // Already-canonical text is returned verbatim, sign and case too.
            ("+1k", "+1k"),
            ("1E3", "1E3"),
            ("1e+3", "1e+3"),
            ("01", "01"),
            ("+1Ki", "+1Ki"),
            ("1.500k", "1.500k"),
            ("1.5k", "1500"),
            // Slow-path values are exact, not capped (DecimalSI) ...
            ("18446744073709551616", "18446744073709551616"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            // ... but BinarySI is capped at 2^63-1.
            ("8Ei", "9223372036854775807"),
            ("16Ei", "9223372036854775807"),
            // 1.28–1.33 drop an exponent that has no DecimalSI suffix.
            ("1000E", "1"),
            ("10000P", "10E"),
            ("1e21", "1e21"),
            ("1e-10", "1e-9"),
            ("0.0000000001", "1n"),
        ] {
            assert_eq!(canon(input), output, "{input}");
        }
    }

    #[test]
    fn value_equality() {
        assert_eq!(q("1e3"), q("1k"));
        assert_eq!(q("1k"), q("1000"));
        assert_eq!(q("1Gi"), q("1073741824"));
        assert_eq!(q("0.5"), q("500m"));
        assert_eq!(q("0"), q("-0Mi"));
        assert_ne!(q("1Ki"), q("1k"));
        assert!(q("100m") > q("50m"));
        assert!(q("10000T") > q("100Gi"));
        assert!(q("-1") < q("0"));
        assert!(q("-2") < q("-1"));
        assert!(q("1.0001") > q("1"));
    }

    #[test]
    fn round_up_milli() {
        for (input, output) in [
            ("0.1m", "1m"),
            ("1n", "1m"),
            ("1001u", "2m"),
            ("1000001u", "1001m"),
            ("100u", "1m"),
            ("1.0001", "1001m"),
            ("9.01", "9010m"),
            ("-0.1m", "-1m"),
            ("500m", "500m"),
            ("1Gi", "1Gi"),
            ("+1k", "+1k"),
            ("1E3", "1E3"),
            ("0", "0"),
            ("1000000n", "1m"),
            (".000000000001Ki", "1m"),
            ("0.0001Ki", "103m"),
        ] {
            assert_eq!(q(input).round_up_milli().canonical(), output, "{input}");
        }
    }

    #[test]
    fn json_values() {
        for (value, output) in [
            (json!(1), Some("1")),
            (json!(0.5), Some("500m")),
            (json!(1.0), Some("1")),
            (json!(1073741824), Some("1073741824")),
            (json!(1000), Some("1k")),
            (json!(1e3), Some("1k")),
            (json!(2.5e-7), Some("250e-9")),
            (json!(1e21), Some("1e+21")),
            (json!(0.1), Some("100m")),
            (json!(18446744073709551615u64), Some("18446744073709551615")),
            (json!(-1), Some("-1")),
            (json!("1.5Gi"), Some("1536Mi")),
            (json!(" 1 "), Some("1")),
            (json!("0"), Some("0")),
            (json!(""), None),
            (json!("abc"), None),
            (json!(null), None),
            (json!(true), None),
            (json!({"a": 1}), None),
            (json!([1]), None),
        ] {
            assert_eq!(canonical_json(&value).as_deref(), output, "{value}");
        }
        assert!(same_quantity(&json!("1Gi"), &json!(1073741824)));
        assert!(same_quantity(&json!(0.5), &json!("500m")));
        assert!(same_quantity(&json!("1e3"), &json!("1k")));
        assert!(!same_quantity(&json!("1Gi"), &json!("1G")));
        assert!(!same_quantity(&json!("x"), &json!("x")));
    }

    #[test]
    fn from_str_and_display() {
        let parsed: Quantity = "1.5Gi".parse().expect("valid");
        assert_eq!(parsed.to_string(), "1536Mi");
        assert_eq!("nope".parse::<Quantity>(), Err(InvalidQuantity));
    }

    fn beyond_exa(q: &Quantity) -> bool {
        q.format() != Format::DecimalExponent
            && q.literal.is_none()
            && q.exponent - q.exponent.rem_euclid(3) > 18
    }

    fn quantity_text() -> impl Strategy<Value = String> {
        let number = prop_oneof![
            "[0-9]{1,6}",
            "[0-9]{0,4}\\.[0-9]{1,6}",
            "[0-9]{10,25}",
            "[1-9][0-9]{0,3}\\.[0-9]{0,12}",
        ];
        let suffix = prop_oneof![
            Just(String::new()),
            prop::sample::select(vec!["n", "u", "m", "k", "M", "G", "T", "P"])
                .prop_map(String::from),
            prop::sample::select(vec!["Ki", "Mi", "Gi", "Ti", "Pi"]).prop_map(String::from),
            (-12i32..16).prop_map(|e| format!("e{e}")),
        ];
        let sign = prop::sample::select(vec!["", "+", "-"]);
        (sign, number, suffix).prop_map(|(s, n, x)| format!("{s}{n}{x}"))
    }

    proptest! {
        #[test]
        fn canonical_is_a_fixed_point(text in quantity_text()) {
            let parsed = q(&text);
            let once = parsed.canonical();
            let reparsed = q(&once);
            prop_assert_eq!(reparsed.canonical(), once.clone());
            // The canonical text denotes the parsed value (except where
            // 1.28–1.33 drop a DecimalSI exponent beyond E).
            if !beyond_exa(&parsed) {
                prop_assert_eq!(&reparsed, &parsed, "{} -> {}", text, once);
            }
            // Rounding to milli is idempotent and never decreases magnitude.
            let milli = parsed.round_up_milli();
            if !beyond_exa(&milli) {
                prop_assert_eq!(q(&milli.canonical()), milli.clone());
            }
            prop_assert_eq!(milli.round_up_milli().canonical(), milli.canonical());
            if parsed.negative {
                prop_assert!(milli <= parsed);
            } else {
                prop_assert!(milli >= parsed);
            }
        }

        #[test]
        fn canonical_of_whole_numbers(n in any::<i64>()) {
            let parsed = q(&n.to_string());
            prop_assert_eq!(&parsed, &dec(i128::from(n), 0, Format::DecimalSI));
            prop_assert_eq!(q(&parsed.canonical()), parsed);
        }
    }
}
