//! The scan events one `MessageContext.encode_run` or `encode_flat` call took, kept in native
//! memory so that `RecordBatches.append_run` writes them into record batches without Python
//! objects.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::Event;

/// Scan events the native encoder took, in record order, held in native memory.
#[pyclass(frozen, module = "ivmtr_native")]
#[derive(Default)]
pub struct EncodedRun {
    pub(crate) events: Vec<Event>,
    kind_counts: [u64; 4],
    /// campaign -> (events, logical deliveries), in the order campaigns were first seen.
    campaigns: Vec<(String, u64, u64)>,
    campaign_index: HashMap<String, usize>,
}

impl EncodedRun {
    /// Adds an event, tallying its kind and campaign.
    pub(crate) fn push(&mut self, event: Event) {
        self.kind_counts[usize::from(event.kind)] += 1;
        if let Some(campaign) = &event.campaign {
            let slot = match self.campaign_index.get(campaign) {
                Some(&slot) => slot,
                None => {
                    self.campaigns.push((campaign.clone(), 0, 0));
                    self.campaign_index
                        .insert(campaign.clone(), self.campaigns.len() - 1);
                    self.campaigns.len() - 1
                }
            };
            let entry = &mut self.campaigns[slot];
            entry.1 += 1;
            entry.2 += u64::from(event.logical_delivery);
        }
        self.events.push(event);
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }
}

#[pymethods]
impl EncodedRun {
    fn __len__(&self) -> usize {
        self.events.len()
    }

    /// Events per kind index (0 piece, 1 bundle, 2 handling unit, 3 container).
    fn kind_counts(&self) -> [u64; 4] {
        self.kind_counts
    }

    /// campaign -> (events, logical deliveries) over events that have a campaign.
    fn campaign_counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let counts = PyDict::new(py);
        for (campaign, events, deliveries) in &self.campaigns {
            counts.set_item(campaign, (events, deliveries))?;
        }
        Ok(counts)
    }

    /// (kind, key, Avro body) of each event, in order.
    fn records<'py>(&self, py: Python<'py>) -> Vec<(u8, &str, Bound<'py, PyBytes>)> {
        self.events
            .iter()
            .map(|event| {
                (
                    event.kind,
                    event.key.as_str(),
                    PyBytes::new(py, &event.body),
                )
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("<EncodedRun of {} events>", self.events.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u8, campaign: Option<&str>, logical_delivery: bool) -> Event {
        Event {
            kind,
            key: format!("k{kind}"),
            body: vec![kind],
            logical_delivery,
            campaign: campaign.map(str::to_owned),
        }
    }

    #[test]
    fn kinds_and_campaigns_are_tallied_in_first_seen_order() {
        let mut run = EncodedRun::default();
        run.push(event(0, Some("b"), false));
        run.push(event(0, None, true));
        run.push(event(3, Some("a"), true));
        run.push(event(1, Some("b"), true));
        run.push(event(2, Some("b"), false));
        assert_eq!(run.len(), 5);
        assert_eq!(run.kind_counts, [2, 1, 1, 1]);
        assert_eq!(
            run.campaigns,
            vec![("b".to_owned(), 3, 1), ("a".to_owned(), 1, 1)]
        );
        let kinds: Vec<u8> = run.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [0, 0, 3, 1, 2]);
    }
}
