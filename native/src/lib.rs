//! The compiled fast path of ivmtr-stream: one record of a pushed message, as raw JSON
//! bytes, to the Avro body of its scan event.
//!
//! It is an exact shortcut of the Python pipeline (`consumer.core.validate` and
//! `consumer.core.enrich`, then the topic's Avro encoder), never a second opinion: a
//! record it cannot take entirely (not flat, any problem at all, a bar-string IMb, an
//! unusual time format) gives None, and the Python path decides. The Python side checks
//! that the event schemas have the layout written here before it uses the module, and
//! tests compare both paths byte for byte.

mod avro;
mod batch;
mod crc32c;
mod flat;
mod json;
mod run;
mod scantime;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use sha2::{Digest, Sha256};

use avro::Writer;
use batch::{NativeBatch, RecordBatches};
use flat::{flat_record_spans, FlatRecordSpans};
use json::{FlatRecord, Value};
use run::EncodedRun;
use scantime::ScanTime;

const PIECE: u8 = 0;
const BUNDLE: u8 = 1;
const HANDLING_UNIT: u8 = 2;
const CONTAINER: u8 = 3;
const KIND_NAMES: [&str; 4] = ["piece", "bundle", "handling_unit", "container"];
/// Members beyond the record schema's that the fast path takes in one record.
const MAX_EXTRA: usize = 64;

/// The fields the fast path reads by name; `Fields::text` takes their positions here.
const KNOWN: [&str; 27] = [
    "scanDatetime",
    "handlingEventType",
    "scanEventCode",
    "imb",
    "imbTrackingCode",
    "imbStid",
    "imbMid",
    "imbSerialNumber",
    "imtb",
    "imcb",
    "mailPhase",
    "pieceId",
    "scanLocaleKey",
    "scanFacilityZip",
    "machineName",
    "edocJobId",
    "edocMailingGroupId",
    "edocSubmitterCrid",
    "imtbMid",
    "imcbMid",
    "imtbSerialNumber",
    "imcbSerialNumber",
    "scanFacilityName",
    "scanFacilityCity",
    "scanFacilityState",
    "machineId",
    "scannerType",
];
const SCAN_DATETIME: usize = 0;
const HANDLING_EVENT_TYPE: usize = 1;
const SCAN_EVENT_CODE: usize = 2;
const IMB: usize = 3;
const IMB_TRACKING_CODE: usize = 4;
const IMB_STID: usize = 5;
const IMB_MID: usize = 6;
const IMB_SERIAL_NUMBER: usize = 7;
const IMTB: usize = 8;
const IMCB: usize = 9;
const MAIL_PHASE: usize = 10;
const PIECE_ID: usize = 11;
const SCAN_LOCALE_KEY: usize = 12;
const SCAN_FACILITY_ZIP: usize = 13;
const MACHINE_NAME: usize = 14;
const EDOC_JOB_ID: usize = 15;
const EDOC_MAILING_GROUP_ID: usize = 16;
const EDOC_SUBMITTER_CRID: usize = 17;
const IMTB_MID: usize = 18;
const IMCB_MID: usize = 19;
const IMTB_SERIAL_NUMBER: usize = 20;
const IMCB_SERIAL_NUMBER: usize = 21;
const SCAN_FACILITY_NAME: usize = 22;
const SCAN_FACILITY_CITY: usize = 23;
const SCAN_FACILITY_STATE: usize = 24;
const MACHINE_ID: usize = 25;
const SCANNER_TYPE: usize = 26;

/// The fields of one record schema, in schema order.
struct RecordLayout {
    names: Vec<String>,
    is_int: Vec<bool>,
    index: HashMap<String, usize, BuildHasherDefault<FieldNameHasher>>,
    /// Position of each `KNOWN` field in this schema.
    known: [Option<usize>; KNOWN.len()],
}

impl RecordLayout {
    fn new(fields: Vec<(String, bool)>) -> Self {
        let index: HashMap<String, usize, BuildHasherDefault<FieldNameHasher>> = fields
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), i))
            .collect();
        let known = KNOWN.map(|name| index.get(name).copied());
        let (names, is_int) = fields.into_iter().unzip();
        RecordLayout {
            names,
            is_int,
            index,
            known,
        }
    }
}

/// A multiply-rotate hash taking eight bytes a step (FxHash's step): the table holds only
/// a schema's own field names, fixed at start, so keys of a record looked up in it cannot
/// degrade it; SipHash's cost, or a byte-at-a-time hash's, would buy nothing. Each record
/// looks up every member's name, so this is on the fast path's hottest loop.
#[derive(Default)]
struct FieldNameHasher(u64);

impl Hasher for FieldNameHasher {
    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits: fold the high ones in.
        self.0 ^ (self.0 >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let step = |hash: u64, word: u64| (hash.rotate_left(5) ^ word).wrapping_mul(K);
        let mut hash = self.0;
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            hash = step(
                hash,
                u64::from_le_bytes(word.try_into().expect("eight bytes")),
            );
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            hash = step(hash, u64::from_le_bytes(word));
        }
        self.0 = hash;
    }
}

#[derive(Clone, Copy)]
enum Field<'a> {
    Str(&'a str),
    Int(i64),
}

/// A validated record's fields by schema position (None: null or absent).
struct Fields<'a, 'l> {
    layout: &'l RecordLayout,
    values: Vec<Option<Field<'a>>>,
}

impl<'a> Fields<'a, '_> {
    /// The field's string, as Python's `fields.get(name)` when it holds one.
    fn text(&self, known: usize) -> Option<&'a str> {
        match self.layout.known[known].and_then(|i| self.values[i]) {
            Some(Field::Str(text)) => Some(text),
            _ => None,
        }
    }

    /// Python's `fields.get(name) or None` for a string field.
    fn truthy(&self, known: usize) -> Option<&'a str> {
        self.text(known).filter(|text| !text.is_empty())
    }
}

/// One campaign rule (`consumer.core.campaigns.CampaignRule`).
struct CampaignRule {
    campaign: String,
    mailer_ids: HashSet<String>,
    serial_ranges: Vec<(i128, i128)>,
    stids: HashSet<String>,
    job_ids: HashSet<String>,
    mailing_group_ids: HashSet<String>,
}

struct CampaignKeys<'a> {
    mailer_id: Option<&'a str>,
    serial_number: Option<&'a str>,
    stid: Option<&'a str>,
    job_id: Option<&'a str>,
    mailing_group_id: Option<&'a str>,
}

fn in_set(set: &HashSet<String>, value: Option<&str>) -> bool {
    value.is_some_and(|v| set.contains(v))
}

impl CampaignRule {
    /// Whether the rule matches; None when the serial number is too long to compare here.
    fn matches(&self, keys: &CampaignKeys) -> Option<bool> {
        if !self.mailer_ids.is_empty() && !in_set(&self.mailer_ids, keys.mailer_id) {
            return Some(false);
        }
        if !self.stids.is_empty() && !in_set(&self.stids, keys.stid) {
            return Some(false);
        }
        if !self.job_ids.is_empty() && !in_set(&self.job_ids, keys.job_id) {
            return Some(false);
        }
        if !self.mailing_group_ids.is_empty()
            && !in_set(&self.mailing_group_ids, keys.mailing_group_id)
        {
            return Some(false);
        }
        if !self.serial_ranges.is_empty() {
            let serial = match keys.serial_number {
                Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s,
                _ => return Some(false),
            };
            if serial.len() > 36 {
                return None;
            }
            let number: i128 = serial.parse().ok()?;
            return Some(
                self.serial_ranges
                    .iter()
                    .any(|&(low, high)| low <= number && number <= high),
            );
        }
        Some(true)
    }
}

/// What the event schemas and code tables say; built once per service.
#[pyclass(frozen, module = "ivmtr_native")]
struct ScanEncoder {
    layouts: Vec<RecordLayout>,
    handling_event_types: HashMap<String, (u32, String)>,
    mail_phases: HashMap<String, u32>,
    normalise_mail_phase: PyObject,
    phase_cache: Mutex<HashMap<String, Option<u32>>>,
    service_types: HashMap<String, Vec<u8>>,
    record_state_raw: u32,
    record_state_enriched: u32,
    logical_delivery_opcode: String,
    max_string_length: usize,
}

#[pymethods]
impl ScanEncoder {
    /// `record_fields`: per kind (0 piece, 1 bundle, 2 handling unit, 3 container), the
    /// record schema's fields in order as (name, is_int), every one `["null", T]`.
    /// `handling_event_types`: code -> (enum index, meaning). `mail_phases`: MailPhase symbol
    /// -> enum index, and `normalise_mail_phase` the Python function giving symbols.
    /// `service_types`: STID -> the Avro bytes of the event's `service_type` union.
    #[new]
    #[pyo3(signature = (*, record_fields, handling_event_types, mail_phases, normalise_mail_phase,
                        service_types, record_states, logical_delivery_opcode, max_string_length))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        record_fields: Vec<Vec<(String, bool)>>,
        handling_event_types: HashMap<String, (u32, String)>,
        mail_phases: HashMap<String, u32>,
        normalise_mail_phase: PyObject,
        service_types: HashMap<String, Vec<u8>>,
        record_states: (u32, u32),
        logical_delivery_opcode: String,
        max_string_length: usize,
    ) -> PyResult<Self> {
        if record_fields.len() != 4 {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "record_fields needs the 4 kinds",
            ));
        }
        let layouts = record_fields.into_iter().map(RecordLayout::new).collect();
        Ok(ScanEncoder {
            layouts,
            handling_event_types,
            mail_phases,
            normalise_mail_phase,
            phase_cache: Mutex::new(HashMap::new()),
            service_types,
            record_state_raw: record_states.0,
            record_state_enriched: record_states.1,
            logical_delivery_opcode,
            max_string_length,
        })
    }

    /// The per-message part: provenance, the feed's kind and campaign, campaign rules.
    /// `rules`: (campaign, mailer_ids, serial_ranges, stids, job_ids, mailing_group_ids).
    #[pyo3(signature = (*, source, feed, msg_grp_id, msg_ser_nbr, received_at, kind, campaign, rules))]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn message(
        slf: Py<Self>,
        source: u32,
        feed: String,
        msg_grp_id: Option<String>,
        msg_ser_nbr: Option<i64>,
        received_at: i64,
        kind: Option<u8>,
        campaign: Option<String>,
        rules: Vec<(
            String,
            Vec<String>,
            Vec<(i128, i128)>,
            Vec<String>,
            Vec<String>,
            Vec<String>,
        )>,
    ) -> MessageContext {
        let mut provenance = Writer::with_capacity(64);
        provenance.index(source);
        provenance.string(&feed);
        provenance.optional_string(msg_grp_id.as_deref());
        provenance.optional_long(msg_ser_nbr);
        MessageContext {
            encoder: slf,
            provenance_head: provenance.out,
            received_at,
            kind,
            campaign,
            rules: rules
                .into_iter()
                .map(
                    |(campaign, mailer_ids, serial_ranges, stids, job_ids, mailing_group_ids)| {
                        CampaignRule {
                            campaign,
                            mailer_ids: mailer_ids.into_iter().collect(),
                            serial_ranges,
                            stids: stids.into_iter().collect(),
                            job_ids: job_ids.into_iter().collect(),
                            mailing_group_ids: mailing_group_ids.into_iter().collect(),
                        }
                    },
                )
                .collect(),
        }
    }
}

/// One message's context; `encode` is called once per record.
#[pyclass(frozen, module = "ivmtr_native")]
struct MessageContext {
    encoder: Py<ScanEncoder>,
    provenance_head: Vec<u8>,
    received_at: i64,
    kind: Option<u8>,
    campaign: Option<String>,
    rules: Vec<CampaignRule>,
}

/// What `encode` gives for a record it took.
type Encoded<'py> = (u8, String, Bound<'py, PyBytes>, bool, Option<String>);

#[pymethods]
impl MessageContext {
    /// The record at `index`, as (kind, key, Avro body, logical delivery, campaign), or
    /// None when the Python path must take it.
    fn encode<'py>(
        &self,
        py: Python<'py>,
        raw: &[u8],
        index: i64,
    ) -> PyResult<Option<Encoded<'py>>> {
        let encoder = self.encoder.get();
        let taken = self.event(encoder, raw, index, &mut |text| {
            Self::phase(py, encoder, text)
        })?;
        Ok(Self::encoded(py, taken))
    }

    /// `encode` for many records, without the GIL while it works: (raw, index) pairs.
    fn encode_many<'py>(
        &self,
        py: Python<'py>,
        raws: Vec<PyBackedBytes>,
        indexes: Vec<i64>,
    ) -> PyResult<Vec<Option<Encoded<'py>>>> {
        if raws.len() != indexes.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "raws and indexes differ in length",
            ));
        }
        let encoder = self.encoder.get();
        let results: Vec<PyResult<Taken>> = py.allow_threads(|| {
            raws.iter()
                .zip(&indexes)
                .map(|(raw, &index)| {
                    self.event(encoder, raw, index, &mut |text| {
                        Ok(Self::cached_phase(encoder, text))
                    })
                })
                .collect()
        });
        let mut encoded = Vec::with_capacity(results.len());
        for ((result, raw), &index) in results.into_iter().zip(&raws).zip(&indexes) {
            let taken = match result? {
                // A mailPhase text not seen before: Python names its symbol.
                Taken::NeedsGil => self.event(encoder, raw, index, &mut |text| {
                    Self::phase(py, encoder, text)
                })?,
                taken => taken,
            };
            encoded.push(Self::encoded(py, taken));
        }
        Ok(encoded)
    }

    /// Records from the first on, encoded without holding the GIL, up to the first one the
    /// Python path must take: (the run, how many records it took). A mailPhase not in the
    /// cache is asked of Python holding the GIL, as `encode_many` does, and the run goes on.
    fn encode_run(
        &self,
        py: Python<'_>,
        raws: Vec<PyBackedBytes>,
        indexes: Vec<i64>,
    ) -> PyResult<(EncodedRun, usize)> {
        if raws.len() != indexes.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "raws and indexes differ in length",
            ));
        }
        let mut run = EncodedRun::default();
        let records = raws
            .iter()
            .zip(&indexes)
            .map(|(raw, &index)| (json::parse(raw), raw.len(), index, ()));
        self.encode_until_left(py, &mut run, records)?;
        let taken = run.len();
        Ok((run, taken))
    }

    /// The flat records of `events` from `buf[pos]` on, found as `flat_records` finds them
    /// and encoded as `encode_run` encodes them (indexes from `first_index` on), in one
    /// pass without the GIL and without a Python object per record: (the run, where it
    /// stopped, whether right after a record). It stops where `flat_records` stops, or at
    /// the start of the first record the Python path must take (after_record false), so the
    /// caller's parser takes that record next.
    fn encode_flat(
        &self,
        py: Python<'_>,
        buf: PyBackedBytes,
        pos: usize,
        max_record_bytes: usize,
        first_index: i64,
    ) -> PyResult<(EncodedRun, usize, bool)> {
        // Avro bodies take a little less than the JSON they come from.
        let mut run = EncodedRun::with_capacity(buf.len().saturating_sub(pos));
        let mut scan = FlatRecordSpans::new(&buf, pos, max_record_bytes).listing();
        let records = std::iter::from_fn(|| scan.next_record())
            .zip(first_index..)
            .map(|((start, end, record), index)| (record, end - start, index, start));
        let left = self.encode_until_left(py, &mut run, records)?;
        run.fit();
        let (stop, after_record) = match left {
            Some(start) => (start, false),
            None => scan.stop(),
        };
        Ok((run, stop, after_record))
    }
}

/// What became of one record.
enum Taken {
    Event(Event),
    /// The Python path must take it.
    Python,
    /// It needs a mail phase not in the cache: ask again holding the GIL.
    NeedsGil,
}

/// A MailPhase lookup.
enum Phase {
    Index(Option<u32>),
    /// A symbol the schema lacks: the Python path decides.
    Unknown,
    Miss,
}

struct Event {
    kind: u8,
    key: String,
    body: Vec<u8>,
    logical_delivery: bool,
    campaign: Option<String>,
}

/// The IMb's fields, split as `consumer.core.imb.split_imb` does.
struct Imb<'a> {
    digits: &'a str,
    barcode_id: &'a str,
    service_type_id: &'a str,
    mailer_id: &'a str,
    serial_number: &'a str,
    routing_code: &'a str,
}

impl<'a> Imb<'a> {
    fn tracking_code(&self) -> &'a str {
        &self.digits[..20]
    }
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Split IMb digits; None when they are not 20/25/29/31 digits of a valid payload.
fn split_imb(text: &str) -> Option<Imb<'_>> {
    if !matches!(text.len(), 20 | 25 | 29 | 31) || !is_digits(text) || text.as_bytes()[1] > b'4' {
        return None;
    }
    let mid_length = if text.as_bytes()[5] == b'9' { 9 } else { 6 };
    Some(Imb {
        digits: text,
        barcode_id: &text[0..2],
        service_type_id: &text[2..5],
        mailer_id: &text[5..5 + mid_length],
        serial_number: &text[5 + mid_length..20],
        routing_code: &text[20..],
    })
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

fn is_container_id(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 21
        && b.starts_with(b"99M")
        && b[3..]
            .iter()
            .all(|&c| c.is_ascii_digit() || c.is_ascii_uppercase() || c == b'-')
}

/// `uuid.UUID(bytes=sha256(identity)[:16], version=5)`, as text.
fn hashed_uuid(identity: &str) -> String {
    let digest = Sha256::digest(identity.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

impl MessageContext {
    /// Encodes `records` ((parsed record or None when not flat, its length in bytes, index,
    /// place) each) into `run` without holding the GIL, up to the first one the Python path
    /// must take, whose place it gives (None: all were taken). A mailPhase not in the cache is asked of Python holding the GIL, and the run
    /// goes on after that record; an exception it raises is raised here.
    fn encode_until_left<'r, T: Send>(
        &self,
        py: Python<'_>,
        run: &mut EncodedRun,
        mut records: impl Iterator<Item = (Option<FlatRecord<'r>>, usize, i64, T)> + Send,
    ) -> PyResult<Option<T>> {
        let encoder = self.encoder.get();
        loop {
            // The record that stopped the run and what became of it, or None at the end.
            let stop = py.allow_threads(|| {
                for (record, length, index, place) in records.by_ref() {
                    let taken =
                        self.event_of(encoder, record.as_ref(), length, index, &mut |text| {
                            Ok(Self::cached_phase(encoder, text))
                        });
                    match taken {
                        Ok(Taken::Event(event)) => run.push(event),
                        other => return Some((record, length, index, place, other)),
                    }
                }
                None
            });
            let Some((record, length, index, place, taken)) = stop else {
                return Ok(None);
            };
            let taken = match taken? {
                // A mailPhase text not seen before: Python names its symbol.
                Taken::NeedsGil => {
                    self.event_of(encoder, record.as_ref(), length, index, &mut |text| {
                        Self::phase(py, encoder, text)
                    })?
                }
                taken => taken,
            };
            match taken {
                Taken::Event(event) => run.push(event),
                Taken::Python | Taken::NeedsGil => return Ok(Some(place)),
            }
        }
    }

    fn encoded(py: Python<'_>, taken: Taken) -> Option<Encoded<'_>> {
        match taken {
            Taken::Event(event) => Some((
                event.kind,
                event.key,
                PyBytes::new(py, &event.body),
                event.logical_delivery,
                event.campaign,
            )),
            Taken::Python | Taken::NeedsGil => None,
        }
    }

    fn too_long(encoder: &ScanEncoder, text: &str) -> bool {
        text.len() > encoder.max_string_length && text.chars().count() > encoder.max_string_length
    }

    /// The MailPhase of a raw `mailPhase`, from the cache only (no GIL needed).
    fn cached_phase(encoder: &ScanEncoder, raw: &str) -> Phase {
        match encoder.phase_cache.lock().expect("phase cache").get(raw) {
            Some(&index) => Phase::Index(index),
            None => Phase::Miss,
        }
    }

    /// The MailPhase of a raw `mailPhase`, asking `normalise_mail_phase` on a cache miss.
    fn phase(py: Python<'_>, encoder: &ScanEncoder, raw: &str) -> PyResult<Phase> {
        if let Phase::Index(index) = Self::cached_phase(encoder, raw) {
            return Ok(Phase::Index(index));
        }
        let symbol: Option<String> = encoder
            .normalise_mail_phase
            .call1(py, (raw,))?
            .extract(py)?;
        let index = match symbol {
            None => None,
            Some(symbol) => match encoder.mail_phases.get(&symbol) {
                Some(&index) => Some(index),
                None => return Ok(Phase::Unknown),
            },
        };
        let mut cache = encoder.phase_cache.lock().expect("phase cache");
        if cache.len() < 4096 {
            cache.insert(raw.to_owned(), index);
        }
        Ok(Phase::Index(index))
    }

    /// The event of the raw record at `index`.
    fn event(
        &self,
        encoder: &ScanEncoder,
        raw: &[u8],
        index: i64,
        phase_of: &mut dyn FnMut(&str) -> PyResult<Phase>,
    ) -> PyResult<Taken> {
        self.event_of(
            encoder,
            json::parse(raw).as_ref(),
            raw.len(),
            index,
            phase_of,
        )
    }

    /// The event of a record already parsed (None: it is not flat) of `length` bytes.
    fn event_of(
        &self,
        encoder: &ScanEncoder,
        record: Option<&FlatRecord<'_>>,
        length: usize,
        index: i64,
        phase_of: &mut dyn FnMut(&str) -> PyResult<Phase>,
    ) -> PyResult<Taken> {
        let Some(record) = record else {
            return Ok(Taken::Python);
        };
        let members = &record.members;
        let kind = match self.kind {
            Some(kind) => kind,
            None => match detect_kind(members) {
                Some(kind) => kind,
                None => return Ok(Taken::Python),
            },
        };
        let layout = &encoder.layouts[usize::from(kind)];
        let mut fields = Fields {
            layout,
            values: vec![None; layout.names.len()],
        };
        let mut seen = vec![false; layout.names.len()];
        let mut extra: Vec<(&str, &str)> = Vec::new();
        for (name, value) in members {
            match layout.index.get(name.as_ref()) {
                Some(&i) => {
                    // A repeated key is the Python path's to judge (orjson keeps the last).
                    if std::mem::replace(&mut seen[i], true) {
                        return Ok(Taken::Python);
                    }
                    if layout.is_int[i] {
                        let number = match value {
                            Value::Null => None,
                            Value::Int(n) => Some(*n),
                            Value::Str(text) if text.is_empty() => None,
                            Value::Str(text) if is_digits(text) && text.len() <= 10 => {
                                text.parse().ok()
                            }
                            _ => return Ok(Taken::Python),
                        };
                        match number {
                            Some(n) if !(-(1i64 << 31)..(1i64 << 31)).contains(&n) => {
                                return Ok(Taken::Python)
                            }
                            Some(n) => fields.values[i] = Some(Field::Int(n)),
                            None => {}
                        }
                    } else {
                        match value {
                            Value::Str(text) if !Self::too_long(encoder, text) => {
                                fields.values[i] = Some(Field::Str(text));
                            }
                            Value::Null => {}
                            _ => return Ok(Taken::Python),
                        }
                    }
                }
                None => match value {
                    Value::Str(text) if !Self::too_long(encoder, text) => {
                        // The repeat check is linear: many extra members go the Python way.
                        if extra.len() >= MAX_EXTRA
                            || extra.iter().any(|(seen, _)| *seen == name.as_ref())
                        {
                            return Ok(Taken::Python);
                        }
                        extra.push((name.as_ref(), text.as_ref()));
                    }
                    _ => return Ok(Taken::Python),
                },
            }
        }

        // Validation: anything the Python path would reject is left to it.
        let Some(scan_text) = fields.truthy(SCAN_DATETIME) else {
            return Ok(Taken::Python);
        };
        let Some(scan_time) = scantime::parse(scan_text) else {
            return Ok(Taken::Python);
        };
        let handling = fields.truthy(HANDLING_EVENT_TYPE);
        let handling_entry = match handling {
            Some(code) => match encoder.handling_event_types.get(code) {
                Some(entry) => Some(entry),
                None => return Ok(Taken::Python),
            },
            None => None,
        };
        let opcode = fields.truthy(SCAN_EVENT_CODE);
        match opcode {
            Some(code) if code.len() != 3 || !is_digits(code) => return Ok(Taken::Python),
            None if kind == PIECE => return Ok(Taken::Python),
            _ => {}
        }
        let mut imb = None;
        let object_id: &str = match kind {
            PIECE | BUNDLE => {
                let text = fields
                    .truthy(IMB)
                    .or_else(|| fields.truthy(IMB_TRACKING_CODE));
                let Some(split) = text.and_then(split_imb) else {
                    return Ok(Taken::Python);
                };
                let checks = [
                    (IMB_TRACKING_CODE, split.tracking_code()),
                    (IMB_STID, split.service_type_id),
                    (IMB_MID, split.mailer_id),
                    (IMB_SERIAL_NUMBER, split.serial_number),
                ];
                for (name, value) in checks {
                    if fields.truthy(name).is_some_and(|sent| sent != value) {
                        return Ok(Taken::Python);
                    }
                }
                let id = split.tracking_code();
                imb = Some(split);
                id
            }
            HANDLING_UNIT => match fields.text(IMTB) {
                Some(text) if text.len() == 24 && is_digits(text) => text,
                _ => return Ok(Taken::Python),
            },
            _ => match fields.text(IMCB) {
                Some(text) if is_container_id(text) => text,
                _ => return Ok(Taken::Python),
            },
        };
        let phase_raw = fields.text(MAIL_PHASE);
        let mail_phase = match phase_raw.filter(|text| !text.is_empty()) {
            Some(text) => match phase_of(text)? {
                Phase::Index(index) => index,
                Phase::Unknown => return Ok(Taken::Python),
                Phase::Miss => return Ok(Taken::NeedsGil),
            },
            None => None,
        };

        // Enrichment, written in the event schema's field order.
        let piece_id = fields.truthy(PIECE_ID);
        let event_id = match piece_id {
            Some(id) => id.to_owned(),
            None => {
                let place = fields
                    .truthy(SCAN_LOCALE_KEY)
                    .or_else(|| fields.truthy(SCAN_FACILITY_ZIP))
                    .unwrap_or("");
                let identity = [
                    KIND_NAMES[usize::from(kind)],
                    object_id,
                    &scan_time.utc_micros.to_string(),
                    opcode.unwrap_or(""),
                    handling.unwrap_or(""),
                    place,
                    fields.truthy(MACHINE_NAME).unwrap_or(""),
                ]
                .join("|");
                hashed_uuid(&identity)
            }
        };
        let campaign = match self.campaign_of(kind, &fields, imb.as_ref()) {
            Some(found) => found.or_else(|| self.campaign.clone()),
            None => return Ok(Taken::Python),
        };
        let job_id = fields.truthy(EDOC_JOB_ID);
        let mailing_group_id = fields.truthy(EDOC_MAILING_GROUP_ID);
        let enriched = job_id.is_some() || mailing_group_id.is_some();
        let logical_delivery = opcode == Some(encoder.logical_delivery_opcode.as_str());

        let mut w = Writer::with_capacity(length);
        w.string(&event_id);
        w.raw(&self.provenance_head);
        w.optional_long(Some(index));
        w.long(self.received_at);
        match &imb {
            Some(imb) => {
                w.string(imb.digits);
                w.string(imb.barcode_id);
                w.string(imb.service_type_id);
                w.string(imb.mailer_id);
                w.string(imb.serial_number);
                let routing = imb.routing_code;
                w.optional_string(non_empty(routing));
                w.optional_string(non_empty(&routing[..routing.len().min(5)]));
                w.optional_string(routing.get(5..9));
                w.optional_string(routing.get(9..11));
                w.string(imb.tracking_code());
                match encoder.service_types.get(imb.service_type_id) {
                    Some(bytes) => w.raw(bytes),
                    None => w.out.push(0),
                }
            }
            None => {
                w.string(object_id);
                let mid = if kind == HANDLING_UNIT {
                    IMTB_MID
                } else {
                    IMCB_MID
                };
                w.optional_string(fields.truthy(mid));
            }
        }
        self.write_scan(
            &mut w,
            &fields,
            &scan_time,
            scan_text_raw(&fields),
            opcode,
            handling_entry,
            mail_phase,
            phase_raw,
            logical_delivery,
        );
        w.index(if enriched {
            encoder.record_state_enriched
        } else {
            encoder.record_state_raw
        });
        if enriched {
            w.out.push(2);
            w.optional_string(job_id);
            w.optional_string(mailing_group_id);
            w.optional_string(fields.truthy(EDOC_SUBMITTER_CRID));
        } else {
            w.out.push(0);
        }
        w.optional_string(campaign.as_deref());
        for value in &fields.values {
            match value {
                None => w.out.push(0),
                Some(Field::Str(text)) => w.optional_string(Some(text)),
                Some(Field::Int(n)) => w.optional_long(Some(*n)),
            }
        }
        if !extra.is_empty() {
            w.long(extra.len() as i64);
            for (name, value) in &extra {
                w.string(name);
                w.string(value);
            }
        }
        w.out.push(0);
        Ok(Taken::Event(Event {
            kind,
            key: object_id.to_owned(),
            body: w.out,
            logical_delivery,
            campaign,
        }))
    }

    /// The rules' campaign: Some(None) when none matches, None when the Python path must decide.
    fn campaign_of(&self, kind: u8, fields: &Fields, imb: Option<&Imb>) -> Option<Option<String>> {
        if self.rules.is_empty() {
            return Some(None);
        }
        let (mailer_id, serial_number, stid) = match imb {
            Some(imb) => (
                Some(imb.mailer_id),
                Some(imb.serial_number),
                Some(imb.service_type_id),
            ),
            None if kind == HANDLING_UNIT => {
                (fields.text(IMTB_MID), fields.text(IMTB_SERIAL_NUMBER), None)
            }
            None => (fields.text(IMCB_MID), fields.text(IMCB_SERIAL_NUMBER), None),
        };
        let keys = CampaignKeys {
            mailer_id,
            serial_number,
            stid,
            job_id: fields.truthy(EDOC_JOB_ID),
            mailing_group_id: fields.truthy(EDOC_MAILING_GROUP_ID),
        };
        for rule in &self.rules {
            if rule.matches(&keys)? {
                // `campaign_of(...) or provenance.campaign`: an empty name falls through.
                return Some(non_empty(&rule.campaign).map(str::to_owned));
            }
        }
        Some(None)
    }

    #[allow(clippy::too_many_arguments)]
    fn write_scan(
        &self,
        w: &mut Writer,
        fields: &Fields,
        scan_time: &ScanTime,
        raw_datetime: &str,
        opcode: Option<&str>,
        handling: Option<&(u32, String)>,
        mail_phase: Option<u32>,
        phase_raw: Option<&str>,
        logical_delivery: bool,
    ) {
        w.long(scan_time.utc_micros);
        w.string(&scan_time.local_time);
        w.long(scan_time.utc_offset_minutes);
        w.string(raw_datetime);
        w.optional_string(opcode);
        w.optional_index(handling.map(|entry| entry.0));
        w.optional_string(handling.map(|entry| entry.1.as_str()));
        w.optional_index(mail_phase);
        w.optional_string(phase_raw);
        w.boolean(logical_delivery);
        for name in [
            SCAN_FACILITY_NAME,
            SCAN_FACILITY_CITY,
            SCAN_FACILITY_STATE,
            SCAN_FACILITY_ZIP,
            SCAN_LOCALE_KEY,
        ] {
            w.optional_string(fields.truthy(name));
        }
        for name in [MACHINE_NAME, MACHINE_ID, SCANNER_TYPE] {
            w.optional_string(fields.truthy(name));
        }
    }
}

/// `consumer.core.records.detect_kind`, in one pass; None when the Python path must
/// decide (nothing identifies the record, a key repeats, or a non-string could be true).
fn detect_kind(members: &[(std::borrow::Cow<'_, str>, Value<'_>)]) -> Option<u8> {
    const NAMES: [&str; 6] = [
        "imcb",
        "imtb",
        "deviceId",
        "edocPackageId",
        "imb",
        "imbTrackingCode",
    ];
    let mut found = [None::<bool>; 6];
    for (key, value) in members {
        if let Some(slot) = NAMES.iter().position(|name| name == key) {
            if found[slot].is_some() {
                return None;
            }
            found[slot] = Some(match value {
                Value::Null => false,
                Value::Str(text) => !text.is_empty(),
                _ => return None,
            });
        }
    }
    let [container, unit, device, package, imb, tracking] = found.map(|f| f.unwrap_or(false));
    if container {
        Some(CONTAINER)
    } else if unit {
        Some(HANDLING_UNIT)
    } else if device || package {
        Some(BUNDLE)
    } else if imb || tracking {
        Some(PIECE)
    } else {
        None
    }
}

fn scan_text_raw<'a>(fields: &Fields<'a, '_>) -> &'a str {
    fields.text(SCAN_DATETIME).unwrap_or("")
}

/// The flat records of `events` from `buf[pos]` on, each a valid JSON object of null,
/// string and integer members of at most `max_record_bytes`: (records, where the scan
/// stopped, whether it stopped after a record rather than where a record should start).
/// It stops at the first thing that is not such a record, at `]`, or at the buffer's end.
#[pyfunction]
fn flat_records<'py>(
    py: Python<'py>,
    buf: PyBackedBytes,
    pos: usize,
    max_record_bytes: usize,
) -> (Vec<Bound<'py, PyBytes>>, usize, bool) {
    let (spans, end, after_record) =
        py.allow_threads(|| flat_record_spans(&buf, pos, max_record_bytes));
    let records = spans
        .into_iter()
        .map(|(start, stop)| PyBytes::new(py, &buf[start..stop]))
        .collect();
    (records, end, after_record)
}

/// Kafka's murmur2 masked to 31 bits (`Utils.toPositive`): the key hash the default
/// partitioner takes modulo the partition count.
#[pyfunction]
fn key_hash(data: &[u8]) -> u32 {
    murmur2(data) & 0x7fff_ffff
}

/// Kafka's murmur2 (the Java client's `Utils.murmur2`), its 32 bits unsigned.
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[pymodule]
fn ivmtr_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(key_hash, m)?)?;
    m.add_function(wrap_pyfunction!(flat_records, m)?)?;
    m.add_class::<ScanEncoder>()?;
    m.add_class::<MessageContext>()?;
    m.add_class::<EncodedRun>()?;
    m.add_class::<RecordBatches>()?;
    m.add_class::<NativeBatch>()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::Hasher;

    use super::*;

    #[test]
    fn murmur2_is_kafkas() {
        // Kafka's own vectors (clients UtilsTest.testMurmur2), as signed 32-bit ints.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(
                murmur2(key) as i32,
                expected,
                "{}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn key_hash_is_murmur2_made_positive_for_every_tail_length() {
        // aiokafka.partitioner.murmur2(key) & 0x7fffffff; keys of 0 to 5 bytes cover every
        // tail (0-3 bytes after the 4-byte blocks).
        let cases: [(&[u8], u32); 9] = [
            (b"", 275_646_681),
            (b"a", 584_102_524),
            (b"ab", 316_155_434),
            (b"abc", 479_470_107),
            (b"abcd", 823_834_100),
            (b"abcde", 461_995_741),
            (b"21", 1_173_551_340),
            (b"foobar", 1_357_151_166),
            (b"msg:G/1", 100_141_758),
        ];
        for (key, expected) in cases {
            assert_eq!(key_hash(key), expected, "{}", String::from_utf8_lossy(key));
        }
        let all_bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(key_hash(&all_bytes), 199_136_374);
        assert!((0..1000u32).all(|n| key_hash(&n.to_le_bytes()) <= 0x7fff_ffff));
    }

    #[test]
    fn imbs_split_as_the_python_path_splits_them() {
        let imb = split_imb("0004069951599001910222082").expect("a 25-digit IMb");
        assert_eq!(
            (
                imb.barcode_id,
                imb.service_type_id,
                imb.mailer_id,
                imb.serial_number
            ),
            ("00", "040", "699515", "990019102")
        );
        assert_eq!(
            (imb.routing_code, imb.tracking_code()),
            ("22082", "00040699515990019102")
        );
        // A mailer id starting with 9 has nine digits, and the serial number six.
        let imb = split_imb("00040902345678001234").expect("a 20-digit IMb");
        assert_eq!(
            (imb.mailer_id, imb.serial_number, imb.routing_code),
            ("902345678", "001234", "")
        );
        for digits in [20, 25, 29, 31] {
            assert!(split_imb(&"0".repeat(digits)).is_some(), "{digits} digits");
        }
        for text in [
            "",
            "0004069951599001910",         // 19 digits
            "000406995159900191022",       // 21
            "000406995159900191022208281", // 27
            "05040699515990019102",        // barcode id's second digit over 4
            "0004069951599001910a",
            "０0040699515990019102",
            "ATTFAATTFTADADATDFDFAAFDTFDDDDAFFATDATADTFDFFATDAFFTAFFDAAFAFFDTFTFTDTFAT",
        ] {
            assert!(split_imb(text).is_none(), "{text:?}");
        }
    }

    #[test]
    fn container_ids_are_99m_and_18_characters() {
        assert!(is_container_id("99M902345678000848674"));
        assert!(is_container_id("99M902345678-0084867A"));
        for text in [
            "",
            "99M90234567800084867",
            "99M9023456780008486740",
            "98M902345678000848674",
        ] {
            assert!(!is_container_id(text), "{text:?}");
        }
        assert!(!is_container_id("99M90234567800084867a"));
        assert!(!is_container_id("99M902345678_00848674"));
    }

    #[test]
    fn event_ids_are_pythons_uuid5_layout_of_a_sha256() {
        // uuid.UUID(bytes=hashlib.sha256(identity.encode()).digest()[:16], version=5)
        assert_eq!(
            hashed_uuid("piece|00040699515990019102|1453519793000000|918|A|12345|M1"),
            "60a1db9c-ecb2-58a0-9ab0-f77aa416c1f8"
        );
        assert_eq!(hashed_uuid(""), "e3b0c442-98fc-5c14-9afb-f4c8996fb924");
    }

    #[test]
    fn the_layout_hasher_tells_field_names_apart() {
        let hash = |text: &str| {
            let mut hasher = FieldNameHasher::default();
            hasher.write(text.as_bytes());
            hasher.finish()
        };
        // Names across the eight-byte steps, and ones that differ only past the first step.
        let names = [
            "",
            "a",
            "b",
            "imb",
            "imbMid",
            "imbStid",
            "scanDatetime",
            "scanDatetimf",
            "scanEventCode",
            "scanFacilityZip",
            "scanFacilityZiq",
            "edocJobId",
            "edocJobID",
            "abcdefgh",
            "abcdefghi",
            "abcdefgi",
            "bacdefgh",
        ];
        let hashes: HashSet<u64> = names.iter().map(|name| hash(name)).collect();
        assert_eq!(hashes.len(), names.len());
        assert_eq!(hash("imbMid"), hash("imbMid"));
        let layout =
            RecordLayout::new(vec![("imb".into(), false), ("containerCount".into(), true)]);
        assert_eq!(layout.index.get("containerCount"), Some(&1));
        assert_eq!(layout.known[IMB], Some(0));
        assert_eq!(layout.known[SCAN_DATETIME], None);
    }

    fn rule(mailer_ids: &[&str], serial_ranges: &[(i128, i128)], stids: &[&str]) -> CampaignRule {
        let set = |items: &[&str]| items.iter().map(|&s| s.to_owned()).collect::<HashSet<_>>();
        CampaignRule {
            campaign: "c".into(),
            mailer_ids: set(mailer_ids),
            serial_ranges: serial_ranges.to_vec(),
            stids: set(stids),
            job_ids: HashSet::new(),
            mailing_group_ids: HashSet::new(),
        }
    }

    fn keys<'a>(mailer_id: &'a str, serial_number: &'a str) -> CampaignKeys<'a> {
        CampaignKeys {
            mailer_id: Some(mailer_id),
            serial_number: Some(serial_number),
            stid: Some("040"),
            job_id: None,
            mailing_group_id: None,
        }
    }

    #[test]
    fn campaign_rules_match_every_condition_they_set() {
        let by_serial = rule(&["902345678"], &[(52_900, 52_972)], &[]);
        assert_eq!(
            by_serial.matches(&keys("902345678", "000052900")),
            Some(true)
        );
        assert_eq!(by_serial.matches(&keys("902345678", "52972")), Some(true));
        assert_eq!(by_serial.matches(&keys("902345678", "52973")), Some(false));
        assert_eq!(by_serial.matches(&keys("902345679", "52900")), Some(false));
        assert_eq!(by_serial.matches(&keys("902345678", "")), Some(false));
        assert_eq!(by_serial.matches(&keys("902345678", "-52900")), Some(false));
        // Beyond what an i128 compares here: the Python path decides.
        assert_eq!(by_serial.matches(&keys("902345678", &"9".repeat(37))), None);
        assert_eq!(
            by_serial.matches(&keys("902345678", &"9".repeat(36))),
            Some(false)
        );
        assert_eq!(
            rule(&[], &[], &["040"]).matches(&keys("1", "1")),
            Some(true)
        );
        assert_eq!(
            rule(&[], &[], &["041"]).matches(&keys("1", "1")),
            Some(false)
        );
        assert_eq!(rule(&[], &[], &[]).matches(&keys("1", "1")), Some(true));
    }

    #[test]
    fn kinds_are_detected_as_the_python_path_detects_them() {
        fn kind(raw: &str) -> Option<u8> {
            detect_kind(&json::parse(raw.as_bytes()).expect("an object").members)
        }
        assert_eq!(kind(r#"{"imb":"1","imcb":"2"}"#), Some(CONTAINER));
        assert_eq!(kind(r#"{"imb":"1","imtb":"2"}"#), Some(HANDLING_UNIT));
        assert_eq!(kind(r#"{"imb":"1","deviceId":"2"}"#), Some(BUNDLE));
        assert_eq!(
            kind(r#"{"imbTrackingCode":"1","edocPackageId":"2"}"#),
            Some(BUNDLE)
        );
        assert_eq!(kind(r#"{"imb":"1","imcb":""}"#), Some(PIECE));
        assert_eq!(kind(r#"{"imbTrackingCode":"1","imtb":null}"#), Some(PIECE));
        assert_eq!(kind(r#"{"note":"x"}"#), None);
        assert_eq!(kind(r#"{"imb":"","imbTrackingCode":null}"#), None);
        assert_eq!(kind(r#"{"imb":"1","imb":"2"}"#), None); // a repeated key
        assert_eq!(kind(r#"{"imb":1}"#), None); // a non-string that could be true
    }
}

#[cfg(test)]
mod encode_flat_tests {
    //! `encode_flat` on a small encoder, run in an embedded interpreter: where it stops.

    use std::collections::HashMap;

    use pyo3::types::{PyBytes, PyList};

    use super::*;

    const TAKEN: &str = r#"{"imb":"00040699515990019102","scanDatetime":"2016-01-22 22:29:53-05:00","scanEventCode":"918"}"#;
    /// A scan time the fast path does not take: the Python path's.
    const LEFT: &str =
        r#"{"imb":"00040699515990019102","scanDatetime":"yesterday","scanEventCode":"918"}"#;
    /// A mail phase the encoder has not seen: asked of Python holding the GIL, then taken.
    const UNSEEN_PHASE: &str = r#"{"imb":"00040699515990019102","scanDatetime":"2016-01-22 22:29:53-05:00","scanEventCode":"918","mailPhase":"Phase 1"}"#;
    /// Not flat: the scan itself stops at it.
    const NESTED: &str = r#"{"imb":{"n":1}}"#;

    /// A piece-only message context, and the list `normalise_mail_phase` appends its
    /// arguments to.
    fn context(py: Python<'_>) -> (MessageContext, Bound<'_, PyList>) {
        let asked = PyList::empty(py);
        let normalise = py
            .eval(
                c"lambda asked: lambda text: asked.append(text) or 'ORIGIN'",
                None,
                None,
            )
            .and_then(|make| make.call1((&asked,)))
            .expect("a normalise function");
        let fields = ["imb", "scanDatetime", "scanEventCode", "mailPhase"]
            .map(|name| (name.to_owned(), false))
            .to_vec();
        let encoder = ScanEncoder::new(
            vec![fields; 4],
            HashMap::new(),
            HashMap::from([("ORIGIN".to_owned(), 0)]),
            normalise.unbind(),
            HashMap::new(),
            (0, 1),
            "517".to_owned(),
            100,
        )
        .expect("an encoder");
        let context = ScanEncoder::message(
            Py::new(py, encoder).expect("an encoder object"),
            0,
            "feed".to_owned(),
            Some("G".to_owned()),
            Some(1),
            0,
            Some(PIECE),
            None,
            vec![],
        );
        (context, asked)
    }

    /// (events taken, stop position, after_record) of `encode_flat` over `body` from `pos`.
    fn encode_flat(
        context: &MessageContext,
        py: Python<'_>,
        body: &str,
        pos: usize,
    ) -> (usize, usize, bool) {
        let buf = PyBytes::new(py, body.as_bytes());
        let (run, stop, after_record) = context
            .encode_flat(py, buf.into(), pos, 1 << 20, 0)
            .expect("no Python error");
        (run.len(), stop, after_record)
    }

    #[test]
    fn encode_flat_stops_at_the_start_of_a_record_left_to_python() {
        pyo3::prepare_freethreaded_python();
        Python::with_gil(|py| {
            let (context, asked) = context(py);
            let body = format!("{TAKEN}, {TAKEN},\n{LEFT} ,{TAKEN}]");
            let left = body.find(LEFT).expect("LEFT is in the body");
            assert_eq!(encode_flat(&context, py, &body, 0), (2, left, false));
            // Nothing taken: the position is the record's own, for the parser to take.
            assert_eq!(encode_flat(&context, py, &body, left), (0, left, false));
            // After it, the run goes on to `]`, stopping right after the last record.
            let last = body.rfind(TAKEN).expect("TAKEN is in the body");
            let end = body.len() - 1;
            assert_eq!(encode_flat(&context, py, &body, last), (1, end, true));
            assert_eq!(asked.len(), 0);
        });
    }

    #[test]
    fn encode_flat_stops_where_the_scan_stops() {
        pyo3::prepare_freethreaded_python();
        Python::with_gil(|py| {
            let (context, _) = context(py);
            // A nested record: the scan's stop, after the separator.
            let body = format!("{TAKEN},{NESTED},{TAKEN}]");
            let nested = body.find(NESTED).expect("NESTED is in the body");
            assert_eq!(encode_flat(&context, py, &body, 0), (1, nested, false));
            // A chunk ending inside a record, right after one, or after a separator.
            let cut = format!("{TAKEN},{TAKEN}");
            assert_eq!(
                encode_flat(&context, py, &cut[..cut.len() - 3], 0),
                (1, TAKEN.len() + 1, false)
            );
            assert_eq!(
                encode_flat(&context, py, &format!("{TAKEN} "), 0),
                (1, TAKEN.len() + 1, true)
            );
            let separated = format!("{TAKEN} ,\n");
            assert_eq!(
                encode_flat(&context, py, &separated, 0),
                (1, separated.len(), false)
            );
            assert_eq!(encode_flat(&context, py, "", 0), (0, 0, false));
            assert_eq!(encode_flat(&context, py, "]", 0), (0, 0, false));
        });
    }

    #[test]
    fn an_unseen_mail_phase_is_asked_of_python_and_the_run_goes_on() {
        pyo3::prepare_freethreaded_python();
        Python::with_gil(|py| {
            let (context, asked) = context(py);
            let body = format!("{UNSEEN_PHASE},{TAKEN},{UNSEEN_PHASE},{LEFT}]");
            let left = body.find(LEFT).expect("LEFT is in the body");
            assert_eq!(encode_flat(&context, py, &body, 0), (3, left, false));
            // Asked once: the answer is cached for the second record.
            assert_eq!(
                asked.extract::<Vec<String>>().expect("strings"),
                ["Phase 1"]
            );
        });
    }
}
