//! Kafka record batches, format v2 (magic 2), uncompressed: byte for byte what aiokafka's
//! `DefaultRecordBatchBuilder` writes for the same records, so that whole batches are
//! built without the GIL and handed to aiokafka's accumulator (`producer.send_batch`).
//!
//! A batch is one buffer: 61 header bytes, written when it is built, then the records.
//! It is sealed when the next record would take it past the bound (the first record is
//! always taken), as aiokafka's pure-Python builder and Kafka's Java producer refuse a
//! record. aiokafka's Cython builder (the one it uses when its extensions are built)
//! refuses one byte earlier, a record that would fill the batch exactly to the bound:
//! only where batches end can differ from it, never the bytes of a batch.
//!
//! ```text
//! RecordBatch => BaseOffset i64 (0), Length i32 (bytes after it), PartitionLeaderEpoch
//!   i32 (-1), Magic i8 (2), CRC u32 (CRC-32C of Attributes..end), Attributes i16
//!   (0x10 transactional; CreateTime, no compression), LastOffsetDelta i32,
//!   FirstTimestamp i64, MaxTimestamp i64, ProducerId i64, ProducerEpoch i16,
//!   BaseSequence i32, RecordCount i32, Records
//! Record => Length varint, Attributes i8 (0), TimestampDelta varlong, OffsetDelta varint,
//!   KeyLength varint (-1: null), Key, ValueLength varint, Value,
//!   HeaderCount varint, [HeaderKeyLength varint, HeaderKey, HeaderValueLength varint, HeaderValue]
//! ```
//!
//! Varints are zigzag (Kafka's `ByteUtils.writeVarint`/`writeVarlong`).

use std::collections::VecDeque;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

use crate::crc32c::crc32c;
use crate::murmur2;
use crate::run::EncodedRun;

/// Bytes of the v2 batch header.
pub const HEADER_SIZE: usize = 61;
/// Where `Length` ends: the batch length counts the bytes after it.
const LENGTH_END: usize = 12;
const CRC_OFFSET: usize = 17;
/// The CRC covers the batch from its attributes to its end.
const ATTRIBUTES_OFFSET: usize = 21;
const MAGIC: u8 = 2;
const TRANSACTIONAL: i16 = 0x10;
/// A buffer starts with at most this much room and grows towards the batch bound.
const INITIAL_CAPACITY: usize = 1 << 16;

/// Zigzag encoding: small magnitudes of either sign become small unsigned numbers.
pub fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Bytes of the zigzag varint of `value`.
pub fn varint_size(value: i64) -> usize {
    let mut rest = zigzag(value) >> 7;
    let mut size = 1;
    while rest != 0 {
        rest >>= 7;
        size += 1;
    }
    size
}

/// Appends the zigzag varint of `value`.
pub fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut rest = zigzag(value);
    while rest >= 0x80 {
        out.push((rest as u8) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

fn len_i64(length: usize) -> i64 {
    i64::try_from(length).expect("a length fits an i64")
}

/// A record's headers as they are written: their count, then each key and value.
pub fn encode_headers<K: AsRef<[u8]>, V: AsRef<[u8]>>(headers: &[(K, V)]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, len_i64(headers.len()));
    for (key, value) in headers {
        let (key, value) = (key.as_ref(), value.as_ref());
        put_varint(&mut out, len_i64(key.len()));
        out.extend_from_slice(key);
        put_varint(&mut out, len_i64(value.len()));
        out.extend_from_slice(value);
    }
    out
}

/// What aiokafka's `BatchBuilder` starts with until the accumulator sets it
/// (`_set_producer_state`, with idempotence or transactions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerState {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl Default for ProducerState {
    fn default() -> Self {
        ProducerState {
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: 0,
        }
    }
}

/// One record batch: its header room and records; the header is written by `build`.
#[derive(Debug)]
pub struct Batch {
    buf: Vec<u8>,
    count: u32,
    first_timestamp: i64,
    max_timestamp: i64,
}

impl Batch {
    fn new(max_bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(max_bytes.clamp(HEADER_SIZE, INITIAL_CAPACITY));
        buf.resize(HEADER_SIZE, 0);
        Batch {
            buf,
            count: 0,
            first_timestamp: 0,
            max_timestamp: 0,
        }
    }

    /// Bytes of the batch: header and records.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    pub fn record_count(&self) -> u32 {
        self.count
    }

    fn deltas(&self, timestamp: i64) -> (i64, i64) {
        if self.count == 0 {
            (0, 0)
        } else {
            (
                timestamp.wrapping_sub(self.first_timestamp),
                i64::from(self.count),
            )
        }
    }

    /// (the record's bytes with its length varint, its length) were it appended now.
    fn record_size(
        &self,
        timestamp: i64,
        key: Option<usize>,
        value: usize,
        headers: &[u8],
    ) -> (usize, usize) {
        let (timestamp_delta, offset_delta) = self.deltas(timestamp);
        let key_size = key.map_or(1, |length| varint_size(len_i64(length)) + length);
        let body = 1
            + varint_size(timestamp_delta)
            + varint_size(offset_delta)
            + key_size
            + varint_size(len_i64(value))
            + value
            + headers.len();
        (varint_size(len_i64(body)) + body, body)
    }

    /// Writes a record whose value is the concatenation of `value`; `headers` is
    /// `encode_headers`'s output.
    fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: &[&[u8]],
        headers: &[u8],
        max_bytes: usize,
    ) {
        let value_length: usize = value.iter().map(|part| part.len()).sum();
        let (size, body) = self.record_size(timestamp, key.map(<[u8]>::len), value_length, headers);
        let (timestamp_delta, offset_delta) = self.deltas(timestamp);
        let buf = &mut self.buf;
        if buf.capacity() - buf.len() < size {
            // Doubling, but not past the bound unless a record needs it.
            let wanted = (buf.len() + size).max(buf.capacity().saturating_mul(2).min(max_bytes));
            buf.reserve_exact(wanted - buf.len());
        }
        let start = buf.len();
        put_varint(buf, len_i64(body));
        buf.push(0); // attributes
        put_varint(buf, timestamp_delta);
        put_varint(buf, offset_delta);
        match key {
            Some(key) => {
                put_varint(buf, len_i64(key.len()));
                buf.extend_from_slice(key);
            }
            None => put_varint(buf, -1),
        }
        put_varint(buf, len_i64(value_length));
        for part in value {
            buf.extend_from_slice(part);
        }
        buf.extend_from_slice(headers);
        debug_assert_eq!(buf.len() - start, size);
        if self.count == 0 {
            self.first_timestamp = timestamp;
            self.max_timestamp = timestamp;
        } else {
            self.max_timestamp = self.max_timestamp.max(timestamp);
        }
        self.count += 1;
    }

    /// The finished batch: header written, CRC-32C computed.
    pub fn build(self, transactional: bool, state: ProducerState) -> Vec<u8> {
        let mut buf = self.buf;
        let length = i32::try_from(buf.len() - LENGTH_END).expect("a batch under 2 GiB");
        let count = i32::try_from(self.count).expect("records counted in an i32");
        let attributes = if transactional { TRANSACTIONAL } else { 0 };
        let mut header = Vec::with_capacity(HEADER_SIZE);
        header.extend_from_slice(&0i64.to_be_bytes()); // base offset: the broker's
        header.extend_from_slice(&length.to_be_bytes());
        header.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        header.push(MAGIC);
        header.extend_from_slice(&0u32.to_be_bytes()); // CRC, below
        header.extend_from_slice(&attributes.to_be_bytes());
        header.extend_from_slice(&(count - 1).max(0).to_be_bytes()); // last offset delta
        header.extend_from_slice(&self.first_timestamp.to_be_bytes());
        header.extend_from_slice(&self.max_timestamp.to_be_bytes());
        header.extend_from_slice(&state.producer_id.to_be_bytes());
        header.extend_from_slice(&state.producer_epoch.to_be_bytes());
        header.extend_from_slice(&state.base_sequence.to_be_bytes());
        header.extend_from_slice(&count.to_be_bytes());
        debug_assert_eq!(header.len(), HEADER_SIZE);
        buf[..HEADER_SIZE].copy_from_slice(&header);
        let crc = crc32c(&buf[ATTRIBUTES_OFFSET..]);
        buf[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
        buf
    }
}

/// One partition's batches are filled in turn; a batch is sealed when the next record
/// would take it past the bound.
#[derive(Debug)]
pub struct Sealed {
    pub topic: usize,
    pub partition: u32,
    pub batch: Batch,
}

/// The open batch of every (topic, partition) and the batches sealed since last taken.
pub struct Batches {
    partitions: Vec<u32>,
    max_bytes: usize,
    open: Vec<Vec<Option<Batch>>>,
    sealed: VecDeque<Sealed>,
    /// Records appended and not yet taken out.
    pending: usize,
}

/// Where the events of one kind go: topic, the value's prefix, encoded headers.
pub struct Route {
    pub topic: usize,
    pub prefix: Vec<u8>,
    pub headers: Vec<u8>,
}

impl Batches {
    pub fn new(partitions: Vec<u32>, max_bytes: usize) -> Result<Self, String> {
        if partitions.contains(&0) {
            return Err("every topic needs at least one partition".into());
        }
        if i32::try_from(max_bytes).is_err() {
            return Err("max_batch_bytes must fit an i32".into());
        }
        let open = partitions
            .iter()
            .map(|&count| (0..count).map(|_| None).collect())
            .collect();
        Ok(Batches {
            partitions,
            max_bytes,
            open,
            sealed: VecDeque::new(),
            pending: 0,
        })
    }

    pub fn pending(&self) -> usize {
        self.pending
    }

    pub fn check(&self, topic: usize, partition: u32) -> Result<(), String> {
        match self.partitions.get(topic) {
            None => Err(format!(
                "topic index {topic} out of range ({} topics)",
                self.partitions.len()
            )),
            Some(&count) if partition >= count => Err(format!(
                "partition {partition} out of range (topic {topic} has {count})"
            )),
            Some(_) => Ok(()),
        }
    }

    /// Kafka's default partition of a key: murmur2 made positive, modulo the count.
    pub fn partition_of(&self, topic: usize, key: &[u8]) -> u32 {
        (murmur2(key) & 0x7fff_ffff) % self.partitions[topic]
    }

    /// One record (after `check`); seals the open batch first when it would not fit.
    pub fn append(
        &mut self,
        topic: usize,
        partition: u32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: &[&[u8]],
        headers: &[u8],
    ) {
        let max_bytes = self.max_bytes;
        let slot = &mut self.open[topic][partition as usize];
        if let Some(open) = slot.as_ref() {
            let value_length = value.iter().map(|part| part.len()).sum();
            let (size, _) =
                open.record_size(timestamp, key.map(<[u8]>::len), value_length, headers);
            if open.count > 0 && open.size() + size > max_bytes {
                let batch = slot.take().expect("an open batch");
                self.sealed.push_back(Sealed {
                    topic,
                    partition,
                    batch,
                });
            }
        }
        let slot = &mut self.open[topic][partition as usize];
        slot.get_or_insert_with(|| Batch::new(max_bytes))
            .push(timestamp, key, value, headers, max_bytes);
        self.pending += 1;
    }

    /// Every event in order: key the event's, value the route's prefix then the body.
    pub fn append_events(&mut self, run: &EncodedRun, routes: &[Route], timestamp: i64) {
        for (kind, key, body) in run.iter() {
            let route = &routes[usize::from(kind)];
            let partition = self.partition_of(route.topic, key);
            self.append(
                route.topic,
                partition,
                timestamp,
                Some(key),
                &[&route.prefix, body],
                &route.headers,
            );
        }
    }

    /// The batches sealed since last taken, in sealing order.
    pub fn take_sealed(&mut self) -> Vec<Sealed> {
        let taken: Vec<Sealed> = self.sealed.drain(..).collect();
        self.pending -= taken.iter().map(|s| s.batch.count as usize).sum::<usize>();
        taken
    }

    /// The sealed batches, then every open one by topic and partition.
    pub fn drain(&mut self) -> Vec<Sealed> {
        for (topic, partitions) in self.open.iter_mut().enumerate() {
            for (partition, slot) in partitions.iter_mut().enumerate() {
                if let Some(batch) = slot.take() {
                    self.sealed.push_back(Sealed {
                        topic,
                        partition: partition as u32,
                        batch,
                    });
                }
            }
        }
        self.take_sealed()
    }
}

/// Open Kafka record batches (format v2, uncompressed), one per (topic index, partition).
#[pyclass(module = "ivmtr_native")]
pub struct RecordBatches {
    batches: Batches,
    transactional: bool,
}

type PyHeaders = Vec<(String, PyBackedBytes)>;

impl RecordBatches {
    fn native(&self, sealed: Vec<Sealed>) -> Vec<(usize, u32, NativeBatch)> {
        sealed
            .into_iter()
            .map(|s| {
                let batch = NativeBatch::new(s.batch, self.transactional);
                (s.topic, s.partition, batch)
            })
            .collect()
    }
}

#[pymethods]
impl RecordBatches {
    /// `partitions[t]`: topic index t's partition count.
    #[new]
    #[pyo3(signature = (*, partitions, max_batch_bytes, transactional))]
    fn new(partitions: Vec<u32>, max_batch_bytes: usize, transactional: bool) -> PyResult<Self> {
        Ok(RecordBatches {
            batches: Batches::new(partitions, max_batch_bytes).map_err(PyValueError::new_err)?,
            transactional,
        })
    }

    /// One record; seals the partition's open batch first when the record would not fit.
    #[pyo3(signature = (topic, partition, key, value, headers, timestamp_ms))]
    fn append(
        &mut self,
        topic: usize,
        partition: u32,
        key: Option<PyBackedBytes>,
        value: PyBackedBytes,
        headers: PyHeaders,
        timestamp_ms: i64,
    ) -> PyResult<()> {
        self.batches
            .check(topic, partition)
            .map_err(PyValueError::new_err)?;
        let headers = encode_headers(&headers);
        self.batches.append(
            topic,
            partition,
            timestamp_ms,
            key.as_deref(),
            &[&value],
            &headers,
        );
        Ok(())
    }

    /// Every event of `run`, in order, without holding the GIL; `routes[kind]` is
    /// (topic index, value prefix, headers).
    fn append_run(
        &mut self,
        py: Python<'_>,
        run: &Bound<'_, EncodedRun>,
        routes: Vec<(usize, PyBackedBytes, PyHeaders)>,
        timestamp_ms: i64,
    ) -> PyResult<()> {
        let run = run.get();
        let routes: Vec<Route> = routes
            .into_iter()
            .map(|(topic, prefix, headers)| {
                self.batches
                    .check(topic, 0)
                    .map_err(PyValueError::new_err)?;
                Ok(Route {
                    topic,
                    prefix: prefix.to_vec(),
                    headers: encode_headers(&headers),
                })
            })
            .collect::<PyResult<_>>()?;
        if let Some(kind) = run.kinds().find(|&kind| usize::from(kind) >= routes.len()) {
            return Err(PyValueError::new_err(format!(
                "no route for kind {kind} ({} routes)",
                routes.len()
            )));
        }
        let batches = &mut self.batches;
        py.allow_threads(|| batches.append_events(run, &routes, timestamp_ms));
        Ok(())
    }

    /// The batches that filled up since the last call, in sealing order; taken out.
    fn sealed(&mut self) -> Vec<(usize, u32, NativeBatch)> {
        let sealed = self.batches.take_sealed();
        self.native(sealed)
    }

    /// Every batch holding records: the sealed ones, then every open one; taken out.
    fn drain(&mut self) -> Vec<(usize, u32, NativeBatch)> {
        let drained = self.batches.drain();
        self.native(drained)
    }

    /// Records appended and not yet taken out.
    fn __len__(&self) -> usize {
        self.batches.pending()
    }
}

/// One sealed record batch, shaped as the aiokafka `BatchBuilder` its accumulator drives.
#[pyclass(module = "ivmtr_native")]
pub struct NativeBatch {
    /// Until built.
    batch: Option<Batch>,
    transactional: bool,
    state: ProducerState,
    count: u32,
    size: usize,
    built: Option<Py<PyBytes>>,
}

impl NativeBatch {
    fn new(batch: Batch, transactional: bool) -> Self {
        NativeBatch {
            count: batch.record_count(),
            size: batch.size(),
            batch: Some(batch),
            transactional,
            state: ProducerState::default(),
            built: None,
        }
    }
}

#[pymethods]
impl NativeBatch {
    /// Always None: a sealed batch takes no more records (aiokafka then opens its own).
    #[pyo3(signature = (*, timestamp, key, value, headers=None))]
    fn append(
        &self,
        timestamp: &Bound<'_, PyAny>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        headers: Option<&Bound<'_, PyAny>>,
    ) {
        let _ = (timestamp, key, value, headers);
    }

    fn close(&self) {}

    fn closed(&self) -> bool {
        true
    }

    fn record_count(&self) -> u32 {
        self.count
    }

    /// Bytes of the built batch (header and records).
    fn size(&self) -> usize {
        self.size
    }

    #[pyo3(name = "_set_producer_state")]
    fn set_producer_state(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> PyResult<()> {
        if self.built.is_some() {
            return Err(PyRuntimeError::new_err(
                "the batch is built: its producer state is fixed",
            ));
        }
        self.state = ProducerState {
            producer_id,
            producer_epoch,
            base_sequence,
        };
        Ok(())
    }

    /// The batch's bytes, built (and its CRC computed without the GIL) on the first call.
    #[pyo3(name = "_build")]
    fn build(&mut self, py: Python<'_>) -> Py<PyBytes> {
        if let Some(built) = &self.built {
            return built.clone_ref(py);
        }
        let batch = self.batch.take().expect("a batch not yet built");
        let (transactional, state) = (self.transactional, self.state);
        let buf = py.allow_threads(move || batch.build(transactional, state));
        let built = PyBytes::new(py, &buf).unbind();
        drop(buf);
        self.built = Some(built.clone_ref(py));
        built
    }

    fn __repr__(&self) -> String {
        format!(
            "<NativeBatch of {} records, {} bytes>",
            self.count, self.size
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    fn varint(value: i64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, value);
        assert_eq!(out.len(), varint_size(value), "{value}");
        out
    }

    #[test]
    fn zigzag_varints() {
        let cases: [(i64, &[u8]); 14] = [
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-2, &[0x03]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (-65, &[0x81, 0x01]),
            (150, &[0xac, 0x02]),
            (300, &[0xd8, 0x04]),
            (8191, &[0xfe, 0x7f]),
            (8192, &[0x80, 0x80, 0x01]),
            (i64::from(i32::MAX), &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i64::from(i32::MIN), &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for (value, bytes) in cases {
            assert_eq!(varint(value), bytes, "{value}");
        }
        assert_eq!(
            varint(i64::MAX),
            [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(
            varint(i64::MIN),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(zigzag(-3), 5);
    }

    #[test]
    fn headers_are_count_then_keys_and_values() {
        assert_eq!(encode_headers::<&str, &[u8]>(&[]), [0x00]);
        assert_eq!(
            encode_headers(&[("k", &b"vv"[..]), ("", &b""[..])]),
            [0x04, 0x02, b'k', 0x04, b'v', b'v', 0x00, 0x00]
        );
    }

    /// A record as Kafka's `DefaultRecord.writeTo` writes it, spelled out by hand.
    #[test]
    fn a_batch_of_two_records_byte_by_byte() {
        let mut batches = Batches::new(vec![1], 1 << 20).unwrap();
        let headers = encode_headers(&[("h", &b"x"[..])]);
        batches.append(0, 0, 1_000, Some(b"ab"), &[b"v1", b"23"], &headers);
        batches.append(0, 0, 999, None, &[b""], &encode_headers::<&str, &[u8]>(&[]));
        let mut drained = batches.drain();
        assert_eq!(drained.len(), 1);
        let batch = drained.pop().unwrap().batch;
        assert_eq!(batch.record_count(), 2);
        let state = ProducerState {
            producer_id: 7,
            producer_epoch: 3,
            base_sequence: 42,
        };
        let built = batch.build(true, state);
        let first: &[u8] = &[
            0x20, // length 16
            0x00, // attributes
            0x00, // timestamp delta 0
            0x00, // offset delta 0
            0x04, b'a', b'b', // key
            0x08, b'v', b'1', b'2', b'3', // value
            0x02, 0x02, b'h', 0x02, b'x', // one header
        ];
        let second: &[u8] = &[
            0x0c, // length 6
            0x00, 0x01, // timestamp delta -1
            0x02, // offset delta 1
            0x01, // null key
            0x00, // empty value
            0x00, // no headers
        ];
        let records = [first, second].concat();
        assert_eq!(&built[HEADER_SIZE..], &records[..]);
        let mut header = Vec::new();
        header.extend_from_slice(&0i64.to_be_bytes());
        header.extend_from_slice(&((HEADER_SIZE - 12 + records.len()) as i32).to_be_bytes());
        header.extend_from_slice(&(-1i32).to_be_bytes());
        header.push(2);
        let crc_at = header.len();
        header.extend_from_slice(&[0; 4]);
        header.extend_from_slice(&0x10i16.to_be_bytes());
        header.extend_from_slice(&1i32.to_be_bytes());
        header.extend_from_slice(&1_000i64.to_be_bytes());
        header.extend_from_slice(&1_000i64.to_be_bytes());
        header.extend_from_slice(&7i64.to_be_bytes());
        header.extend_from_slice(&3i16.to_be_bytes());
        header.extend_from_slice(&42i32.to_be_bytes());
        header.extend_from_slice(&2i32.to_be_bytes());
        let crc = crate::crc32c::crc32c_portable(&[&header[21..], &records[..]].concat());
        header[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(&built[..HEADER_SIZE], &header[..]);
    }

    fn append_sized(batches: &mut Batches, partition: u32, value_length: usize) {
        let value = vec![b'x'; value_length];
        batches.append(0, partition, 5, Some(b"k"), &[&value], &[0]);
    }

    /// With one-byte key, no headers, the same timestamp and value length n < 64 and a
    /// small offset delta, a record takes 1 (length) + 1 + 1 + 1 + 2 + 1 + n + 1 bytes.
    #[test]
    fn a_batch_is_sealed_when_the_next_record_would_pass_the_bound() {
        let record = 8 + 50;
        let max = HEADER_SIZE + 3 * record;
        let mut batches = Batches::new(vec![2], max).unwrap();
        for _ in 0..3 {
            append_sized(&mut batches, 0, 50);
        }
        assert!(batches.take_sealed().is_empty());
        let open = batches.open[0][0].as_ref().unwrap();
        assert_eq!(open.size(), max); // exactly at the bound: still open
        append_sized(&mut batches, 1, 50); // another partition fills on its own
        append_sized(&mut batches, 0, 50);
        let sealed = batches.take_sealed();
        assert_eq!(sealed.len(), 1);
        assert_eq!((sealed[0].topic, sealed[0].partition), (0, 0));
        assert_eq!(sealed[0].batch.record_count(), 3);
        assert_eq!(sealed[0].batch.size(), max);
        assert_eq!(batches.pending(), 2);

        // One byte less of room: the third record no longer fits.
        let mut batches = Batches::new(vec![1], max - 1).unwrap();
        for _ in 0..3 {
            append_sized(&mut batches, 0, 50);
        }
        let sealed = batches.take_sealed();
        assert_eq!(sealed.len(), 1);
        assert_eq!(sealed[0].batch.record_count(), 2);
        let drained = batches.drain();
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].batch.record_count(), 1);
        assert_eq!(batches.pending(), 0);
    }

    #[test]
    fn a_record_larger_than_the_bound_gets_a_batch_of_its_own() {
        let mut batches = Batches::new(vec![1], 200).unwrap();
        append_sized(&mut batches, 0, 10);
        append_sized(&mut batches, 0, 1000); // seals the first, opens its own
        append_sized(&mut batches, 0, 10); // seals the large one
        let sealed = batches.take_sealed();
        let counts: Vec<u32> = sealed.iter().map(|s| s.batch.record_count()).collect();
        assert_eq!(counts, [1, 1]);
        assert!(sealed[1].batch.size() > 1000 + HEADER_SIZE);
        // A bound below the header: every record alone.
        let mut batches = Batches::new(vec![1], 0).unwrap();
        for _ in 0..3 {
            append_sized(&mut batches, 0, 1);
        }
        let counts: Vec<u32> = batches
            .drain()
            .iter()
            .map(|s| s.batch.record_count())
            .collect();
        assert_eq!(counts, [1, 1, 1]);
    }

    #[test]
    fn drain_gives_sealed_batches_first_then_open_ones_by_topic_and_partition() {
        let mut batches = Batches::new(vec![3, 2], HEADER_SIZE + 60).unwrap();
        let mut put = |topic: usize, partition: u32| {
            batches.append(topic, partition, 0, None, &[&[0u8; 50][..]], &[0]);
        };
        put(1, 1);
        put(0, 2);
        put(0, 2); // seals (0, 2)
        put(1, 0);
        put(1, 1); // seals (1, 1)
        put(0, 0);
        let order: Vec<(usize, u32, u32)> = batches
            .drain()
            .iter()
            .map(|s| (s.topic, s.partition, s.batch.record_count()))
            .collect();
        assert_eq!(
            order,
            [
                (0, 2, 1),
                (1, 1, 1),
                (0, 0, 1),
                (0, 2, 1),
                (1, 0, 1),
                (1, 1, 1)
            ]
        );
        assert_eq!(batches.pending(), 0);
        assert!(batches.drain().is_empty());
    }

    #[test]
    fn topics_and_partitions_are_checked() {
        assert!(Batches::new(vec![1, 0], 100).is_err());
        assert!(Batches::new(vec![1], 1 << 31).is_err());
        let batches = Batches::new(vec![2, 1], 100).unwrap();
        assert!(batches.check(0, 1).is_ok());
        assert!(batches.check(0, 2).is_err());
        assert!(batches.check(1, 1).is_err());
        assert!(batches.check(2, 0).is_err());
        // Kafka's own: murmur2("foobar") = -790332482 -> 1357151166 when made positive.
        assert_eq!(batches.partition_of(0, b"foobar"), 1_357_151_166 % 2);
    }

    #[test]
    fn events_go_to_their_kinds_topic_with_the_prefixed_body() {
        let mut batches = Batches::new(vec![4, 1], 1 << 20).unwrap();
        let routes = [
            Route {
                topic: 0,
                prefix: vec![0, 0, 0, 0, 9],
                headers: encode_headers(&[("kind", &b"piece"[..])]),
            },
            Route {
                topic: 1,
                prefix: vec![0, 0, 0, 0, 8],
                headers: encode_headers::<&str, &[u8]>(&[]),
            },
        ];
        let event = |kind: u8, key: &str| Event {
            kind,
            key: key.to_owned(),
            body: vec![0xAA, kind],
            logical_delivery: false,
            campaign: None,
        };
        let mut run = EncodedRun::default();
        for (kind, key) in [(0, "a"), (1, "b"), (0, "foobar")] {
            run.push(event(kind, key));
        }
        batches.append_events(&run, &routes, 77);
        assert_eq!(batches.pending(), 3);
        let drained = batches.drain();
        let placed: Vec<(usize, u32, u32)> = drained
            .iter()
            .map(|s| (s.topic, s.partition, s.batch.record_count()))
            .collect();
        let a = (murmur2(b"a") & 0x7fff_ffff) % 4;
        let foobar = 1_357_151_166 % 4;
        let mut expected = vec![(0, a, 1), (0, foobar, 1), (1, 0, 1)];
        if a == foobar {
            expected = vec![(0, a, 2), (1, 0, 1)];
        }
        expected.sort();
        assert_eq!(placed, expected);
        let bundle = drained.into_iter().last().unwrap().batch;
        let built = bundle.build(false, ProducerState::default());
        let mut record = vec![0u8]; // attributes
        record.extend_from_slice(&[0x00, 0x00, 0x02, b'b']); // deltas, key
        record.extend_from_slice(&[0x0e, 0, 0, 0, 0, 8, 0xAA, 1, 0x00]); // value, headers
        let mut expected = Vec::new();
        put_varint(&mut expected, record.len() as i64);
        expected.extend_from_slice(&record);
        assert_eq!(&built[HEADER_SIZE..], &expected[..]);
    }
}
