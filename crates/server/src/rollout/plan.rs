//! What a rollout decides without I/O: which wave each device is in, and when failures halt it.

use sipprov_model::{Mac, RolloutDeviceState};
use sipprov_store::NewRolloutDevice;

/// A device of the group, as the rollout finds it at creation.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// The device.
    pub mac: Mac,
    /// The firmware it last reported, if any.
    pub reported: Option<String>,
    /// Why it cannot take part (no firmware file for its model…), if so.
    pub skip: Option<String>,
    /// True when `reported` is already the rollout's version.
    pub on_version: bool,
}

/// The rows of a new rollout: skipped devices and devices already on the version get wave -1
/// (skipped, or succeeded at once); the rest, by MAC, fill the canary (wave 0, `canary`
/// devices) and then waves of `wave_percent` % of those left after it (rounded up, at least one).
pub(crate) fn assign(mut candidates: Vec<Candidate>, canary: u32, wave_percent: u32) -> Vec<NewRolloutDevice> {
    candidates.sort_by_key(|c| c.mac);
    let mut rows = Vec::with_capacity(candidates.len());
    let mut movers = Vec::new();
    for c in candidates {
        match (c.skip, c.on_version) {
            (Some(reason), _) => rows.push(row(c.mac, -1, RolloutDeviceState::Skipped, c.reported, Some(reason))),
            (None, true) => {
                let why = Some("already reports the version".to_string());
                rows.push(row(c.mac, -1, RolloutDeviceState::Succeeded, c.reported, why));
            }
            (None, false) => movers.push((c.mac, c.reported)),
        }
    }
    let canary = (canary as usize).min(movers.len());
    let rest = movers.len() - canary;
    let per_wave = (rest * wave_percent.clamp(1, 100) as usize).div_ceil(100).max(1);
    for (i, (mac, reported)) in movers.into_iter().enumerate() {
        let wave = if i < canary { 0 } else { 1 + (i - canary) / per_wave };
        rows.push(row(mac, wave as i64, RolloutDeviceState::Waiting, reported, None));
    }
    rows
}

fn row(
    mac: Mac,
    wave: i64,
    state: RolloutDeviceState,
    from: Option<String>,
    reason: Option<String>,
) -> NewRolloutDevice {
    NewRolloutDevice { mac, wave, state, from_version: from, reason }
}

/// True when `failed` of `decided` devices passes `halt_percent` % (strictly more than it).
pub(crate) fn should_halt(failed: usize, decided: usize, halt_percent: u32) -> bool {
    failed > 0 && failed * 100 > decided * halt_percent as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(n: u8) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                mac: format!("0015650000{i:02x}").parse().unwrap(),
                reported: Some("1.0".into()),
                skip: None,
                on_version: false,
            })
            .collect()
    }

    fn waves(rows: &[NewRolloutDevice]) -> Vec<i64> {
        rows.iter().map(|r| r.wave).collect()
    }

    #[test]
    fn canary_first_then_waves_of_the_rest() {
        let rows = assign(candidates(12), 2, 25);
        // 10 left after the canary, 25 % rounded up = 3 a wave.
        assert_eq!(waves(&rows), [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4]);
        let rows = assign(candidates(3), 10, 50);
        assert_eq!(waves(&rows), [0, 0, 0]);
        let rows = assign(candidates(3), 0, 1);
        assert_eq!(waves(&rows), [1, 2, 3]);
    }

    #[test]
    fn skipped_and_already_there_are_in_no_wave() {
        let mut c = candidates(3);
        c[0].skip = Some("no firmware file for model T46S".into());
        c[1].on_version = true;
        let rows = assign(c, 1, 100);
        assert_eq!(waves(&rows), [-1, -1, 0]);
        assert_eq!(rows[0].state, RolloutDeviceState::Skipped);
        assert_eq!(rows[1].state, RolloutDeviceState::Succeeded);
        assert_eq!(rows[2].state, RolloutDeviceState::Waiting);
    }

    #[test]
    fn halts_only_past_the_threshold() {
        assert!(!should_halt(0, 10, 0));
        assert!(should_halt(1, 10, 0));
        assert!(!should_halt(1, 20, 5));
        assert!(should_halt(2, 20, 5));
        assert!(!should_halt(10, 10, 100));
    }
}
