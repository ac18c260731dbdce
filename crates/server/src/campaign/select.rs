//! Choosing a campaign's devices: listed MACs, a group, everything, and/or only the changed ones.

use std::collections::HashMap;

use sipprov_model::Mac;

use super::CampaignEngine;

/// What the operator asked for. `changed` narrows the other choice (or all devices).
/// (The admin API's `CreateCampaign` is the wire form; this is what the engine selects with.)
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// These devices, by MAC in any usual spelling.
    pub macs: Vec<String>,
    /// Every device of this group.
    pub group: Option<String>,
    /// Every device.
    pub all: bool,
    /// Only devices whose files changed since their last fetch (narrows the others).
    pub changed: bool,
}

/// Why a selection cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    /// Nothing chosen at all.
    #[error("choose devices: MACs, --group, --all or --changed")]
    Empty,
    /// More than one of MACs, group and all.
    #[error("choose one of: MACs, --group or --all (--changed may narrow any of them)")]
    Ambiguous,
    /// A MAC that does not parse; the message says why.
    #[error("{0}")]
    BadMac(String),
    /// A MAC that is not in the inventory.
    #[error("device {0} not found")]
    UnknownDevice(Mac),
    /// A group with no devices (or no such group).
    #[error("group {0:?} has no devices")]
    EmptyGroup(String),
    /// The selection is valid but empty (e.g. `--changed` with nothing changed).
    #[error("no device is selected: {0}")]
    NothingSelected(String),
    /// The store failed while selecting.
    #[error(transparent)]
    Store(#[from] sipprov_store::StoreError),
}

impl CampaignEngine {
    /// Resolves a selection to MACs (sorted) and a description for the campaign listing.
    pub async fn select_devices(&self, sel: &Selection) -> Result<(Vec<Mac>, String), SelectionError> {
        let kinds = usize::from(!sel.macs.is_empty()) + usize::from(sel.group.is_some()) + usize::from(sel.all);
        if kinds == 0 && !sel.changed {
            return Err(SelectionError::Empty);
        }
        if kinds > 1 {
            return Err(SelectionError::Ambiguous);
        }
        let (mut macs, mut description) = self.base_selection(sel)?;
        if sel.changed {
            macs = self.only_changed(macs).await?;
            description = if description == "--all" { "--changed".into() } else { format!("{description} --changed") };
        }
        if macs.is_empty() {
            return Err(SelectionError::NothingSelected(description));
        }
        macs.sort();
        Ok((macs, description))
    }

    fn base_selection(&self, sel: &Selection) -> Result<(Vec<Mac>, String), SelectionError> {
        if !sel.macs.is_empty() {
            let mut macs = Vec::new();
            for text in &sel.macs {
                let mac: Mac =
                    text.parse().map_err(|e: sipprov_model::MacError| SelectionError::BadMac(e.to_string()))?;
                if !self.inventory.contains(mac) {
                    return Err(SelectionError::UnknownDevice(mac));
                }
                macs.push(mac);
            }
            macs.dedup();
            let description = if macs.len() <= 3 {
                macs.iter().map(Mac::to_string).collect::<Vec<_>>().join(" ")
            } else {
                format!("{} listed devices", macs.len())
            };
            return Ok((macs, description));
        }
        if let Some(group) = &sel.group {
            let macs: Vec<Mac> = self
                .inventory
                .devices()
                .into_iter()
                .filter(|d| d.group.as_deref() == Some(group))
                .map(|d| d.mac)
                .collect();
            if macs.is_empty() {
                return Err(SelectionError::EmptyGroup(group.clone()));
            }
            return Ok((macs, format!("--group {group}")));
        }
        Ok((self.inventory.devices().into_iter().map(|d| d.mac).collect(), "--all".into()))
    }

    /// Keeps the devices whose config as rendered now differs from what they last fetched.
    async fn only_changed(&self, macs: Vec<Mac>) -> Result<Vec<Mac>, SelectionError> {
        self.events.flush().await;
        let fetched: HashMap<(Mac, String), String> =
            self.store.fetched_since(0).await?.into_iter().map(|(mac, file, hash, _)| ((mac, file), hash)).collect();
        Ok(macs
            .into_iter()
            .filter(|mac| {
                let (Some(file), Some(now)) = (self.files.primary_file_name(*mac), self.files.primary_file_hash(*mac))
                else {
                    return false;
                };
                fetched.get(&(*mac, file)) != Some(&now)
            })
            .collect())
    }
}
