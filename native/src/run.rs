//! The scan events one `MessageContext.encode_run` or `encode_flat` call took, kept in native
//! memory so that `RecordBatches.append_run` writes them into record batches without Python
//! objects.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::Event;

/// Scan events the native encoder took, in record order, held in native memory.
///
/// Keys and bodies lie end to end in two buffers, so a run of thousands of events is a
/// handful of allocations: the batches read it as one stream, and freeing it (on the event
/// loop's thread) costs nothing per event.
#[pyclass(frozen, module = "ivmtr_native")]
#[derive(Default)]
pub struct EncodedRun {
    events: Vec<EventEnd>,
    keys: Vec<u8>,
    bodies: Vec<u8>,
    kind_counts: [u64; 4],
    /// campaign -> (events, logical deliveries), in the order campaigns were first seen.
    campaigns: Vec<(String, u64, u64)>,
    campaign_index: HashMap<String, usize>,
}

/// Where one event's key and body end in the run's buffers, and its kind.
struct EventEnd {
    kind: u8,
    key: usize,
    body: usize,
}

impl EncodedRun {
    /// A run whose bodies are expected to take about `body_bytes`.
    pub(crate) fn with_capacity(body_bytes: usize) -> Self {
        EncodedRun {
            bodies: Vec::with_capacity(body_bytes),
            ..EncodedRun::default()
        }
    }

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
        self.keys.extend_from_slice(event.key.as_bytes());
        self.bodies.extend_from_slice(&event.body);
        self.events.push(EventEnd {
            kind: event.kind,
            key: self.keys.len(),
            body: self.bodies.len(),
        });
    }

    /// Gives back what `with_capacity` reserved beyond need when the run stopped early
    /// (a record left to the Python path), so that short runs do not hold whole chunks.
    pub(crate) fn fit(&mut self) {
        if self.bodies.capacity() > 2 * self.bodies.len() + 65_536 {
            self.bodies.shrink_to_fit();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    /// (kind, key, Avro body) of each event, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u8, &[u8], &[u8])> + '_ {
        let mut key_start = 0;
        let mut body_start = 0;
        self.events.iter().map(move |end| {
            let key = &self.keys[key_start..end.key];
            let body = &self.bodies[body_start..end.body];
            key_start = end.key;
            body_start = end.body;
            (end.kind, key, body)
        })
    }

    /// The kind of each event, in order.
    pub(crate) fn kinds(&self) -> impl Iterator<Item = u8> + '_ {
        self.events.iter().map(|end| end.kind)
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
        self.iter()
            .map(|(kind, key, body)| {
                // Keys were pushed as `String`s: whole UTF-8 texts end to end.
                let key = std::str::from_utf8(key).expect("keys are pushed as text");
                (kind, key, PyBytes::new(py, body))
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
        let events: Vec<(u8, &[u8], &[u8])> = run.iter().collect();
        assert_eq!(
            events,
            [
                (0, &b"k0"[..], &[0][..]),
                (0, b"k0", &[0]),
                (3, b"k3", &[3]),
                (1, b"k1", &[1]),
                (2, b"k2", &[2]),
            ]
        );
        assert_eq!(run.kinds().collect::<Vec<_>>(), [0, 0, 3, 1, 2]);
        assert_eq!(EncodedRun::default().iter().count(), 0);
    }
}
