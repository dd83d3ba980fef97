//! UTC calendar arithmetic and the two text formats CloudTrail uses for times.

use trailmill_core::key::KeyTime;

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// Earliest supported time: 1970-01-01T00:00:00Z.
pub(crate) const MIN_SECS: i64 = 0;
/// Latest supported time: 9999-12-31T23:59:59Z.
pub(crate) const MAX_SECS: i64 = 253_402_300_799;

/// Breaks Unix seconds into a UTC civil time.
pub(crate) fn civil(secs: i64) -> Civil {
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = trailmill_core::time::civil_from_days(secs.div_euclid(86_400));
    let (month, day) = (month as u8, day as u8);
    Civil {
        year,
        month,
        day,
        hour: (sod / 3600) as u8,
        minute: (sod / 60 % 60) as u8,
        second: (sod % 60) as u8,
    }
}

/// The `YYYY-MM-DDTHH:MM:SSZ` text of `secs`, as in event and digest times.
pub(crate) fn iso(secs: i64) -> String {
    let mut b = [0u8; 20];
    iso_into(secs, &mut b);
    // The buffer only ever holds ASCII digits and separators.
    b.iter().map(|&c| c as char).collect()
}

/// Writes the 20 bytes of `YYYY-MM-DDTHH:MM:SSZ` into `out`.
pub(crate) fn iso_into(secs: i64, out: &mut [u8; 20]) {
    let c = civil(secs);
    let y = c.year.clamp(0, 9999) as u32;
    let put2 = |o: &mut [u8], v: u8| {
        o[0] = b'0' + v / 10;
        o[1] = b'0' + v % 10;
    };
    out[0] = b'0' + (y / 1000) as u8;
    out[1] = b'0' + (y / 100 % 10) as u8;
    out[2] = b'0' + (y / 10 % 10) as u8;
    out[3] = b'0' + (y % 10) as u8;
    out[4] = b'-';
    put2(&mut out[5..7], c.month);
    out[7] = b'-';
    put2(&mut out[8..10], c.day);
    out[10] = b'T';
    put2(&mut out[11..13], c.hour);
    out[13] = b':';
    put2(&mut out[14..16], c.minute);
    out[16] = b':';
    put2(&mut out[17..19], c.second);
    out[19] = b'Z';
}

/// The file-name time of `secs`: minute precision for log files, second
/// precision for digests.
pub(crate) fn key_time(secs: i64, with_seconds: bool) -> KeyTime {
    let c = civil(secs);
    KeyTime {
        year: c.year.clamp(0, 9999) as u16,
        month: c.month,
        day: c.day,
        hour: c.hour,
        minute: c.minute,
        second: with_seconds.then_some(c.second),
    }
}

/// `Jan 1, 2024, 1:03:12 AM`: the format of STS credential expirations in
/// CloudTrail's `responseElements`.
pub(crate) fn sts_expiration(secs: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = civil(secs);
    let (h12, ampm) = match c.hour {
        0 => (12, "AM"),
        1..=11 => (c.hour, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{} {}, {}, {}:{:02}:{:02} {}",
        MONTHS[usize::from(c.month - 1)],
        c.day,
        c.year,
        h12,
        c.minute,
        c.second,
        ampm
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_key_time() {
        for secs in [
            0,
            951_782_400,
            1_704_067_200,
            1_709_251_199,
            4_102_444_800,
            MAX_SECS - 2 * 86_400,
        ] {
            let kt = key_time(secs, true);
            assert_eq!(kt.unix_seconds(), secs, "{secs}");
        }
        assert_eq!(iso(1_704_067_200), "2024-01-01T00:00:00Z");
        assert_eq!(iso(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(
            sts_expiration(1_704_067_200 + 3600 + 192),
            "Jan 1, 2024, 1:03:12 AM"
        );
        assert_eq!(
            sts_expiration(1_704_067_200 + 13 * 3600),
            "Jan 1, 2024, 1:00:00 PM"
        );
    }
}
