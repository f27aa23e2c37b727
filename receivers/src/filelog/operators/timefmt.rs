//! Time layouts of the `time_parser` operator and of parsers' `timestamp:` blocks:
//! `strptime` directives (as the Collector's ctimefmt reads them), Go reference layouts
//! (`gotime`) and `epoch` units; and time zones (`location`) read from the system's
//! zoneinfo files (in `zone`).

mod zone;

pub use zone::{TzData, Zone};

/// One piece of a layout.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Lit(String),
    Year4,
    Year2,
    Month,
    MonthName,
    Day,
    YearDay,
    Hour24,
    Hour12,
    Minute,
    Second,
    AmPm,
    /// Fractional seconds (the digits after the separator, any count up to 9).
    Frac,
    /// Go's `.999`: the separator and fraction, both optional.
    FracOpt(char),
    Weekday,
    /// `+hhmm` / `+hh:mm` / `+hh`; `z` also takes `Z` for UTC.
    Offset {
        z: bool,
    },
    ZoneName,
}

/// A compiled layout.
#[derive(Debug, Clone)]
pub struct Layout {
    items: Vec<Item>,
}

/// How a value is turned into a time.
#[derive(Debug, Clone)]
pub enum TimeLayout {
    /// strptime or gotime, with the zone for values that carry none.
    Pattern(Layout, Zone),
    /// Seconds/milliseconds/... since 1970: the unit's nanoseconds, and whether the value
    /// is `s.<unit>` (seconds with a fraction).
    Epoch { unit_nanos: u64, fractional: bool },
}

/// Compiles a strptime layout (`%Y-%m-%dT%H:%M:%S.%fZ`).
pub fn strptime(layout: &str) -> Result<Layout, String> {
    let mut items = Vec::new();
    let mut lit = String::new();
    let mut chars = layout.chars();
    let flush = |lit: &mut String, items: &mut Vec<Item>| {
        if !lit.is_empty() {
            items.push(Item::Lit(std::mem::take(lit)));
        }
    };
    while let Some(c) = chars.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        let Some(d) = chars.next() else {
            return Err(format!("layout {layout:?} ends with a lone %"));
        };
        if d == '%' {
            lit.push('%');
            continue;
        }
        flush(&mut lit, &mut items);
        let more: &[Item] = match d {
            'Y' => &[Item::Year4],
            'y' => &[Item::Year2],
            'm' => &[Item::Month],
            'b' | 'h' | 'B' => &[Item::MonthName],
            'd' | 'e' => &[Item::Day],
            'j' => &[Item::YearDay],
            'a' | 'A' => &[Item::Weekday],
            'H' => &[Item::Hour24],
            'I' | 'l' => &[Item::Hour12],
            'p' => &[Item::AmPm],
            'M' => &[Item::Minute],
            'S' => &[Item::Second],
            'L' | 'f' | 's' => &[Item::Frac],
            'z' => &[Item::Offset { z: false }],
            'Z' => &[Item::ZoneName],
            'D' => {
                items.extend([
                    Item::Month,
                    Item::Lit("/".into()),
                    Item::Day,
                    Item::Lit("/".into()),
                    Item::Year2,
                ]);
                &[]
            }
            'F' => {
                items.extend([
                    Item::Year4,
                    Item::Lit("-".into()),
                    Item::Month,
                    Item::Lit("-".into()),
                    Item::Day,
                ]);
                &[]
            }
            'T' => {
                items.extend([
                    Item::Hour24,
                    Item::Lit(":".into()),
                    Item::Minute,
                    Item::Lit(":".into()),
                    Item::Second,
                ]);
                &[]
            }
            'n' | 't' => {
                lit.push(if d == 'n' { '\n' } else { '\t' });
                &[]
            }
            other => {
                return Err(format!(
                    "layout {layout:?}: directive %{other} is not supported (use %Y %y %m %b %B %d %e %j %a %A %H %I %p %M %S %L %f %s %z %Z %D %F %T %%)"
                ))
            }
        };
        items.extend_from_slice(more);
    }
    flush(&mut lit, &mut items);
    Ok(Layout { items })
}

/// Compiles a Go reference layout (`2006-01-02T15:04:05.999999999Z07:00`).
pub fn gotime(layout: &str) -> Result<Layout, String> {
    let mut items = Vec::new();
    let mut lit = String::new();
    let b = layout.as_bytes();
    let mut i = 0;
    let starts = |i: usize, s: &str| layout[i..].starts_with(s);
    while i < b.len() {
        let (item, len) = if starts(i, "January") || starts(i, "Jan") {
            (Item::MonthName, if starts(i, "January") { 7 } else { 3 })
        } else if starts(i, "Monday") {
            (Item::Weekday, 6)
        } else if starts(i, "Mon") {
            (Item::Weekday, 3)
        } else if starts(i, "MST") {
            (Item::ZoneName, 3)
        } else if starts(i, "2006") {
            (Item::Year4, 4)
        } else if starts(i, "002") {
            (Item::YearDay, 3)
        } else if starts(i, "01") {
            (Item::Month, 2)
        } else if starts(i, "02") {
            (Item::Day, 2)
        } else if starts(i, "03") {
            (Item::Hour12, 2)
        } else if starts(i, "04") {
            (Item::Minute, 2)
        } else if starts(i, "05") {
            (Item::Second, 2)
        } else if starts(i, "06") {
            (Item::Year2, 2)
        } else if starts(i, "15") {
            (Item::Hour24, 2)
        } else if starts(i, "__2") {
            (Item::YearDay, 3)
        } else if starts(i, "_2") && !starts(i, "_2006") {
            (Item::Day, 2)
        } else if starts(i, "1") {
            (Item::Month, 1)
        } else if starts(i, "2") {
            (Item::Day, 1)
        } else if starts(i, "3") {
            (Item::Hour12, 1)
        } else if starts(i, "4") {
            (Item::Minute, 1)
        } else if starts(i, "5") {
            (Item::Second, 1)
        } else if starts(i, "PM") || starts(i, "pm") {
            (Item::AmPm, 2)
        } else if let Some(n) = ["-07:00:00", "-070000", "-07:00", "-0700", "-07"]
            .iter()
            .find(|p| starts(i, p))
        {
            (Item::Offset { z: false }, n.len())
        } else if let Some(n) = ["Z07:00:00", "Z070000", "Z07:00", "Z0700", "Z07"]
            .iter()
            .find(|p| starts(i, p))
        {
            (Item::Offset { z: true }, n.len())
        } else if (b[i] == b'.' || b[i] == b',')
            && i + 1 < b.len()
            && (b[i + 1] == b'0' || b[i + 1] == b'9')
        {
            let d = b[i + 1];
            let mut j = i + 1;
            while j < b.len() && b[j] == d {
                j += 1;
            }
            if j < b.len() && b[j].is_ascii_digit() {
                lit.push(b[i] as char);
                i += 1;
                continue;
            }
            if !lit.is_empty() {
                items.push(Item::Lit(std::mem::take(&mut lit)));
            }
            if d == b'9' {
                items.push(Item::FracOpt(b[i] as char));
            } else {
                items.push(Item::Lit((b[i] as char).to_string()));
                items.push(Item::Frac);
            }
            i = j;
            continue;
        } else {
            let c = layout[i..].chars().next().unwrap_or(' ');
            lit.push(c);
            i += c.len_utf8();
            continue;
        };
        if !lit.is_empty() {
            items.push(Item::Lit(std::mem::take(&mut lit)));
        }
        items.push(item);
        i += len;
    }
    if !lit.is_empty() {
        items.push(Item::Lit(lit));
    }
    Ok(Layout { items })
}

/// The unit of an `epoch` layout.
pub fn epoch(layout: &str) -> Result<TimeLayout, String> {
    let (unit_nanos, fractional) = match layout {
        "s" => (1_000_000_000, false),
        "ms" => (1_000_000, false),
        "us" => (1_000, false),
        "ns" => (1, false),
        "s.ms" => (1_000_000, true),
        "s.us" => (1_000, true),
        "s.ns" => (1, true),
        other => {
            return Err(format!(
                "epoch layout {other:?} is not one of s, ms, us, ns, s.ms, s.us, s.ns"
            ))
        }
    };
    Ok(TimeLayout::Epoch {
        unit_nanos,
        fractional,
    })
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn current_year() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // Civil year from days (inverse of days_from_civil, year part only).
    let z = secs.div_euclid(86400) + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + if m <= 2 { 1 } else { 0 }
}

struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn rest(&self) -> &str {
        &self.s[self.at..]
    }
    fn num(&mut self, max: usize, what: &str) -> Result<i64, String> {
        let r = self.rest().as_bytes();
        // A space-padded day (`_2`, `%e`).
        let mut skip = 0;
        if max == 2 && r.first() == Some(&b' ') {
            skip = 1;
        }
        let digits = r[skip..]
            .iter()
            .take(max)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err(format!("expected {what} at {:?}", self.rest()));
        }
        let v = self.rest()[skip..skip + digits]
            .parse::<i64>()
            .map_err(|e| e.to_string())?;
        self.at += skip + digits;
        Ok(v)
    }
    fn word<'w>(&mut self, names: &'w [&'w str]) -> Option<usize> {
        let rest = self.rest().to_ascii_lowercase();
        for (i, n) in names.iter().enumerate() {
            if rest.starts_with(n) {
                self.at += n.len();
                return Some(i);
            }
            if rest.len() >= 3 && rest.starts_with(&n[..3]) {
                self.at += 3;
                return Some(i);
            }
        }
        None
    }
    /// Fraction digits as nanoseconds.
    fn frac(&mut self) -> Result<i64, String> {
        let r = self.rest().as_bytes();
        let digits = r.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!("expected fractional seconds at {:?}", self.rest()));
        }
        let mut ns: i64 = 0;
        for (i, c) in r[..digits].iter().enumerate() {
            if i < 9 {
                ns = ns * 10 + (c - b'0') as i64;
            }
        }
        for _ in digits..9 {
            ns *= 10;
        }
        self.at += digits;
        Ok(ns)
    }
    fn offset(&mut self, z: bool) -> Result<i64, String> {
        let r = self.rest();
        if (z || r.starts_with('Z')) && (r.starts_with('Z') || r.starts_with('z')) {
            self.at += 1;
            return Ok(0);
        }
        let sign = match r.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(format!("expected a zone offset at {r:?}")),
        };
        self.at += 1;
        let h = self.num(2, "offset hours")?;
        if self.rest().starts_with(':') {
            self.at += 1;
        }
        let m = if self.rest().starts_with(|c: char| c.is_ascii_digit()) {
            self.num(2, "offset minutes")?
        } else {
            0
        };
        Ok(sign * (h * 3600 + m * 60))
    }
}

impl Layout {
    /// Parses `s`; the nanoseconds since 1970 (UTC).
    pub fn parse(&self, s: &str, zone: &Zone) -> Result<u64, String> {
        let mut c = Cursor { s, at: 0 };
        let (mut year, mut month, mut day, mut yday) = (None, 1u32, 1u32, None);
        let (mut hour, mut minute, mut second, mut nanos) = (0i64, 0i64, 0i64, 0i64);
        let mut pm = None;
        let mut offset: Option<i64> = None;
        for (i, item) in self.items.iter().enumerate() {
            match item {
                Item::Lit(l) => {
                    if !c.rest().starts_with(l.as_str()) {
                        return Err(format!(
                            "{s:?} does not match the layout: expected {l:?} at {:?}",
                            c.rest()
                        ));
                    }
                    c.at += l.len();
                }
                Item::Year4 => year = Some(c.num(4, "year")?),
                Item::Year2 => {
                    let y = c.num(2, "year")?;
                    year = Some(if y >= 69 { 1900 + y } else { 2000 + y });
                }
                Item::Month => month = c.num(2, "month")? as u32,
                Item::MonthName => {
                    month = c
                        .word(&MONTHS)
                        .ok_or_else(|| format!("expected a month name at {:?}", c.rest()))?
                        as u32
                        + 1
                }
                Item::Weekday => {
                    c.word(&DAYS)
                        .ok_or_else(|| format!("expected a day name at {:?}", c.rest()))?;
                }
                Item::Day => day = c.num(2, "day")? as u32,
                Item::YearDay => yday = Some(c.num(3, "day of year")?),
                Item::Hour24 | Item::Hour12 => hour = c.num(2, "hour")?,
                Item::Minute => minute = c.num(2, "minute")?,
                Item::Second => {
                    second = c.num(2, "second")?;
                    // As in Go: a fraction right after the seconds is taken even when the
                    // layout has none.
                    let next_is_frac = (matches!(self.items.get(i + 1), Some(Item::Lit(l)) if l == "." || l == ",")
                        && matches!(self.items.get(i + 2), Some(Item::Frac)))
                        || matches!(self.items.get(i + 1), Some(Item::FracOpt(_)));
                    let r = c.rest().as_bytes();
                    if !next_is_frac
                        && r.len() > 1
                        && r[0] == b'.'
                        && r[1].is_ascii_digit()
                        && !matches!(self.items.get(i + 1), Some(Item::Lit(l)) if l.starts_with('.'))
                    {
                        c.at += 1;
                        nanos = c.frac()?;
                    }
                }
                Item::Frac => nanos = c.frac()?,
                Item::FracOpt(sep) => {
                    let r = c.rest().as_bytes();
                    if r.len() > 1 && r[0] == *sep as u8 && r[1].is_ascii_digit() {
                        c.at += 1;
                        nanos = c.frac()?;
                    }
                }
                Item::AmPm => {
                    let r = c.rest();
                    if r.len() < 2 {
                        return Err(format!("expected AM or PM at {r:?}"));
                    }
                    pm = match &r[..2] {
                        "PM" | "pm" => Some(true),
                        "AM" | "am" => Some(false),
                        _ => return Err(format!("expected AM or PM at {r:?}")),
                    };
                    c.at += 2;
                }
                Item::Offset { z } => offset = Some(c.offset(*z)?),
                Item::ZoneName => {
                    let r = c.rest();
                    let n = r
                        .bytes()
                        .take_while(|b| b.is_ascii_alphabetic() || *b == b'+' || *b == b'-')
                        .count();
                    let name = &r[..n];
                    if matches!(name, "UTC" | "GMT" | "Z") {
                        offset = Some(0);
                    }
                    c.at += n;
                }
            }
        }
        if !c.rest().is_empty() {
            return Err(format!(
                "{s:?} has extra text after the layout: {:?}",
                c.rest()
            ));
        }
        if let Some(pm) = pm {
            if hour == 12 {
                hour = 0;
            }
            if pm {
                hour += 12;
            }
        }
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(format!("{s:?}: month or day out of range"));
        }
        if hour > 23 || minute > 59 || second > 60 {
            return Err(format!("{s:?}: hour, minute or second out of range"));
        }
        // A layout without a year: this year (as the Collector does).
        let year = year.unwrap_or_else(current_year);
        let days = match yday {
            Some(d) => days_from_civil(year, 1, 1) + d - 1,
            None => days_from_civil(year, month, day),
        };
        let local = days * 86400 + hour * 3600 + minute * 60 + second;
        let utc = match offset {
            Some(o) => local - o,
            None => zone.local_to_utc(local),
        };
        let ns = utc
            .checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(nanos))
            .ok_or_else(|| format!("{s:?} is out of range"))?;
        u64::try_from(ns).map_err(|_| format!("{s:?} is before 1970"))
    }
}

impl TimeLayout {
    /// Parses a value: a string, or for `epoch` also a number.
    pub fn parse(&self, v: &super::Val) -> Result<u64, String> {
        use super::Val;
        match self {
            TimeLayout::Pattern(layout, zone) => match v {
                Val::Str(s) => layout.parse(s, zone),
                other => Err(format!("type {} cannot be parsed as a time", other.kind())),
            },
            TimeLayout::Epoch {
                unit_nanos,
                fractional,
            } => {
                let text = match v {
                    Val::Str(s) => s.clone(),
                    Val::Int(i) => i.to_string(),
                    Val::Double(d) => format!("{d}"),
                    other => {
                        return Err(format!(
                            "type {} cannot be parsed as an epoch time",
                            other.kind()
                        ))
                    }
                };
                if *fractional {
                    let (secs, frac) = text.split_once('.').unwrap_or((&text, ""));
                    let secs: u64 = secs
                        .parse()
                        .map_err(|_| format!("{text:?} is not an epoch time"))?;
                    let mut ns: u64 = 0;
                    let mut n = 0;
                    for ch in frac.chars().take(9) {
                        let d = ch
                            .to_digit(10)
                            .ok_or_else(|| format!("{text:?} is not an epoch time"))?;
                        ns = ns * 10 + d as u64;
                        n += 1;
                    }
                    for _ in n..9 {
                        ns *= 10;
                    }
                    Ok(secs * 1_000_000_000 + ns)
                } else {
                    let n: u64 = text
                        .parse()
                        .map_err(|_| format!("{text:?} is not an epoch time"))?;
                    n.checked_mul(*unit_nanos)
                        .ok_or_else(|| format!("{text:?} is out of range"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::Val;
    use super::*;

    fn st(layout: &str, v: &str) -> u64 {
        strptime(layout).unwrap().parse(v, &Zone::Utc).unwrap()
    }
    fn go(layout: &str, v: &str) -> u64 {
        gotime(layout).unwrap().parse(v, &Zone::Utc).unwrap()
    }

    #[test]
    fn strptime_layouts_of_the_collectors_docs() {
        // 2021-02-19T12:09:26Z = 1613736566
        assert_eq!(
            st("%Y-%m-%dT%H:%M:%S.%fZ", "2021-02-19T12:09:26.739226Z"),
            1_613_736_566_739_226_000
        );
        assert_eq!(
            st("%Y-%m-%dT%H:%M:%S.%LZ", "2021-02-19T12:09:26.739Z"),
            1_613_736_566_739_000_000
        );
        assert_eq!(
            st("%Y-%m-%d %H:%M:%S %z", "2021-02-19 14:09:26 +0200"),
            1_613_736_566_000_000_000
        );
        assert_eq!(
            st("%d/%b/%Y:%H:%M:%S %z", "19/Feb/2021:12:09:26 +0000"),
            1_613_736_566_000_000_000
        );
        assert_eq!(
            st("%a %b %e %H:%M:%S %Y", "Fri Feb 19 12:09:26 2021"),
            1_613_736_566_000_000_000
        );
        assert_eq!(
            st("%m/%d/%Y %I:%M:%S %p", "02/19/2021 12:09:26 PM"),
            1_613_736_566_000_000_000
        );
        assert!(strptime("%Q").is_err());
        assert!(strptime("%Y-%m-%d")
            .unwrap()
            .parse("2021-02-x", &Zone::Utc)
            .is_err());
    }

    #[test]
    fn go_layouts_including_variable_fractions_and_zones() {
        let l = "2006-01-02T15:04:05.999999999Z07:00";
        assert_eq!(go(l, "2021-02-19T12:09:26.1Z"), 1_613_736_566_100_000_000);
        // .999: the fraction may be absent.
        assert_eq!(go(l, "2021-02-19T12:09:26Z"), 1_613_736_566_000_000_000);
        assert_eq!(
            go(l, "2021-02-19T14:09:26.123456789+02:00"),
            1_613_736_566_123_456_789
        );
        assert_eq!(
            go("Jan _2 15:04:05 2006", "Feb 19 12:09:26 2021"),
            1_613_736_566_000_000_000
        );
        assert_eq!(
            go("02/Jan/2006:15:04:05 -0700", "19/Feb/2021:05:09:26 -0700"),
            1_613_736_566_000_000_000
        );
        // No fraction in the layout, one in the value: taken, as Go does.
        assert_eq!(
            go("2006-01-02 15:04:05", "2021-02-19 12:09:26.5"),
            1_613_736_566_500_000_000
        );
    }

    #[test]
    fn epoch_units() {
        let p = |l: &str, v: Val| epoch(l).unwrap().parse(&v).unwrap();
        assert_eq!(p("s", Val::Int(1613736566)), 1_613_736_566_000_000_000);
        assert_eq!(
            p("ms", Val::Str("1613736566123".into())),
            1_613_736_566_123_000_000
        );
        assert_eq!(
            p("s.ms", Val::Str("1613736566.123".into())),
            1_613_736_566_123_000_000
        );
        assert!(epoch("minutes").is_err());
    }

    #[test]
    fn locations_come_from_zoneinfo() {
        let z = Zone::named("America/New_York").unwrap();
        // 2021-02-19 07:09:26 EST (-05:00) = 12:09:26Z; 2021-07-19 08:09:26 EDT = 12:09:26Z.
        let l = strptime("%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(
            l.parse("2021-02-19 07:09:26", &z).unwrap(),
            1_613_736_566_000_000_000
        );
        assert_eq!(
            l.parse("2021-07-19 08:09:26", &z).unwrap(),
            1_626_696_566_000_000_000
        );
        assert!(Zone::named("Mars/Olympus").is_err());
    }
}
