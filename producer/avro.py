"""Schema-compiled Avro binary encoder: the bytes of fastavro's ``schemaless_writer``, faster.

fastavro interprets the schema for every value, and for every union it validates the
value against each branch; with about a hundred ``["null", "string"]`` fields per event
that was two thirds of the service's CPU. ``compile_encoder`` does the schema work once
and builds two encoders from it:

* the *reference encoder*, a tree of small closures (one per schema node) that checks
  every value and, when one does not fit, names its field path;
* the *fast encoder*, Python source generated for the schema and compiled with
  ``exec``: straight-line code per field, nested records inlined, constant bytes (union
  indexes, enum symbols, headers of short strings) encoded beforehand. It handles the
  common shapes with exact type checks and gives up on anything unusual.

The callable returned runs the fast encoder and, when it gives up, starts again with the
reference encoder, which either encodes the value (say an ``int`` subclass, a tuple for
an array, a mapping that is not a dict) or raises ``AvroEncodeError``. Both write the
bytes fastavro writes for every value both accept; union branches are chosen by
fastavro's rules (first branch that fits, most shared field names among records, double
preferred over float).

Deliberately not mirrored from fastavro (each is refused with an error, never written
differently): truthy non-bools for ``boolean``; bools and numeric strings for
``float``/``double``; ints outside 32 bits for ``int`` (fastavro writes them as they
are); finite doubles too large for ``float`` (fastavro writes infinity); a missing field
without a default (fastavro writes null when the type is nullable); naive datetimes
(fastavro takes them as local time); datetimes and ISO strings for ``date``; the objects
of logical types other than timestamp-millis, timestamp-micros and date (decimal, uuid,
time-*: give the underlying value); branch selection by ``(name, value)`` tuples or a
``"-type"`` key; numpy-style numbers that are not ``numbers.Integral``/``Real``.

One case is written differently, on purpose: in a union where an array branch comes before
a ``bytes`` or ``fixed`` one, fastavro takes a ``bytes`` value for a sequence and writes it
as an array of ints; here it is written as the bytes it is (what Avro means). No schema of
ours has such a union.
"""

from __future__ import annotations

import datetime as _dt
import numbers
import operator
import reprlib
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import fastavro

from producer.errors import SerializationError

__all__ = ["AvroEncodeError", "compile_encoder"]

_Writer = Callable[[bytearray, Any], None]
Encoder = Callable[[Mapping[str, Any]], bytes]

_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
_COMPLEX = _NAMED | {"array", "map"}
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_PACK_FLOAT = struct.Struct("<f").pack
_PACK_DOUBLE = struct.Struct("<d").pack

_REPR = reprlib.Repr()
_REPR.maxstring = 40
_REPR.maxother = 40


class AvroEncodeError(SerializationError):
    """A value does not fit its Avro schema.

    ``path`` names the offending value from the top (``scan.facility.zip``,
    ``reasons[2].problem``, ``extra["k"]``; empty for the top-level value itself) and
    ``problem`` says what is wrong with it.
    """

    def __init__(self, schema: str, path: str, problem: str) -> None:
        super().__init__(f"{schema}: {path}: {problem}" if path else f"{schema}: {problem}")
        self.schema = schema
        self.path = path
        self.problem = problem


class _Invalid(Exception):
    """Internal: a value (or schema node) does not fit; path segments collect on the way up."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.segments: list[str] = []  # innermost first, as the exception unwinds

    def path(self) -> str:
        return "".join(reversed(self.segments)).lstrip(".")


_MISSING: Any = object()


class _Fallback(Exception):
    """Internal: the fast encoder met a value it does not handle; the reference encoder will."""


def _show(value: Any) -> str:
    return f"{type(value).__name__} {_REPR.repr(value)}"


# -- varints -----------------------------------------------------------------------------


def _uvarint_loop(z: int) -> bytes:
    out = bytearray()
    while z > 0x7F:
        out.append(z & 0x7F | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_SMALL = 1024  # varints of 0..1023 (lengths, counts, indexes, UTC offsets) come from a table
_UVARINT: tuple[bytes, ...] = tuple(_uvarint_loop(z) for z in range(_SMALL))
_CONTINUATION = tuple(
    int.from_bytes(b"\x80" * (n - 1) + b"\x00", "little") if n else 0 for n in range(9)
)


def _uvarint(z: int) -> bytes:
    """The varint of a non-negative (already zig-zagged) int."""
    if z < _SMALL:
        return _UVARINT[z]
    if z >> 56:
        return _uvarint_loop(z)
    # Timestamps take 8 bytes: spreading the 7-bit groups into bytes in three parallel
    # steps takes about 0.6 of the time of an 8-round loop.
    x = (z & 0xFFFFFFF) | (z >> 28) << 32
    x = (x & 0x00003FFF00003FFF) | (x & 0x0FFFC0000FFFC000) << 2
    x = (x & 0x007F007F007F007F) | (x & 0x3F803F803F803F80) << 1
    n = (z.bit_length() + 6) // 7
    return (x | _CONTINUATION[n]).to_bytes(n, "little")


def _long_bytes(n: int) -> bytes:
    """Avro's zig-zag varint of a 64-bit int."""
    return _uvarint((n << 1) ^ (n >> 63))


# -- value conversions shared by both encoders --------------------------------------------


def _as_int(value: Any, label: str) -> int:
    # int subclasses (IntEnum) and other Integrals count, as in fastavro; bool does not.
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise _Invalid(f"expected {label}, got {_show(value)}")


def _timestamp(value: Any, per_second: int, label: str) -> int:
    if isinstance(value, _dt.datetime):
        if value.utcoffset() is None:
            raise _Invalid(f"naive datetime {value.isoformat()} for {label}: give a timezone")
        delta = value - _EPOCH
        # fastavro's arithmetic: whole seconds, then the microseconds truncated to the unit.
        seconds = delta.days * 86400 + delta.seconds
        return seconds * per_second + delta.microseconds // (1_000_000 // per_second)
    return _as_int(value, label)


def _to_millis(value: Any) -> int:
    return _timestamp(value, 1000, "long (timestamp-millis)")


def _to_micros(value: Any) -> int:
    return _timestamp(value, 1_000_000, "long (timestamp-micros)")


def _to_days(value: Any) -> int:
    if isinstance(value, _dt.datetime):
        raise _Invalid(f"datetime {value.isoformat()} for int (date): give a date")
    if isinstance(value, _dt.date):
        return value.toordinal() - _EPOCH_ORDINAL
    return _as_int(value, "int (date)")


def _int_converter(kind: str, logical: Any) -> Callable[[Any], int]:
    if kind == "long" and logical == "timestamp-millis":
        return _to_millis
    if kind == "long" and logical == "timestamp-micros":
        return _to_micros
    if kind == "int" and logical == "date":
        return _to_days
    label = kind if logical is None else f"{kind} ({logical})"
    return lambda value: _as_int(value, label)


# -- schema walking ------------------------------------------------------------------------


def _collect_named(schema: Any, named: dict[str, Any]) -> None:
    """Record every named type by full name (fastavro expands each once, then refers by name)."""
    if isinstance(schema, list):
        for branch in schema:
            _collect_named(branch, named)
    elif isinstance(schema, Mapping):
        kind = schema.get("type")
        if kind in _NAMED and isinstance(schema.get("name"), str):
            named.setdefault(schema["name"], schema)
        if isinstance(kind, list | Mapping):
            _collect_named(kind, named)
        elif kind in ("record", "error"):
            for field in schema.get("fields", ()):
                if isinstance(field, Mapping):
                    _collect_named(field.get("type"), named)
        elif kind == "array":
            _collect_named(schema.get("items"), named)
        elif kind == "map":
            _collect_named(schema.get("values"), named)


def _resolve(schema: Any, named: Mapping[str, Any]) -> tuple[str, Any]:
    """(kind, node): a primitive, complex or "union" kind and the dict or list describing it."""
    for _ in range(100):  # a name or {"type": ...} wrapper resolves in a few steps
        if isinstance(schema, list):
            return "union", schema
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return schema, None
            if schema not in named:
                raise _Invalid(f"schema: unknown type {schema!r}")
            schema = named[schema]
        elif isinstance(schema, Mapping):
            kind = schema.get("type")
            if isinstance(kind, str) and kind in _PRIMITIVES | _COMPLEX:
                return ("record" if kind == "error" else kind), schema
            if not isinstance(kind, str | list | Mapping):
                break
            schema = kind
        else:
            break
    raise _Invalid(f"schema: not an Avro type: {_REPR.repr(schema)}")


def _label(schema: Any, named: Mapping[str, Any]) -> str:
    """A short name of a type for messages."""
    try:
        kind, node = _resolve(schema, named)
    except _Invalid:
        return _REPR.repr(schema)
    if kind == "union":
        return "[" + ", ".join(_label(branch, named) for branch in node) + "]"
    if kind in _NAMED:
        return str(node.get("name"))
    if kind == "array":
        return f"array<{_label(node.get('items'), named)}>"
    if kind == "map":
        return f"map<{_label(node.get('values'), named)}>"
    logical = node.get("logicalType") if node is not None else None
    return kind if logical is None else f"{kind} ({logical})"


def _fields(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    fields = node.get("fields")
    if not isinstance(fields, list) or not all(
        isinstance(f, Mapping) and isinstance(f.get("name"), str) for f in fields
    ):
        raise _Invalid(f"schema: record {node.get('name')} has no proper fields")
    return fields


def _symbols(node: Mapping[str, Any]) -> list[str]:
    symbols = node.get("symbols")
    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
        raise _Invalid(f"schema: enum {node.get('name')} has no proper symbols")
    return symbols


def _logical(node: Any) -> Any:
    return node.get("logicalType") if isinstance(node, Mapping) else None


# -- the reference encoder: a tree of closures ----------------------------------------------


def _accepts(kind: str) -> Callable[[Any], bool]:
    """A cheap test by Python type: could a value be of this kind? (The encoder decides.)"""
    if kind == "null":
        return lambda v: v is None
    if kind == "boolean":
        return lambda v: isinstance(v, bool)
    if kind in ("int", "long"):
        # Timestamps and dates take datetimes and dates; the writer checks the details.
        return lambda v: (isinstance(v, numbers.Integral | _dt.date)) and not isinstance(v, bool)
    if kind in ("float", "double"):
        return lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)
    if kind in ("string", "enum"):
        return lambda v: isinstance(v, str)
    if kind in ("bytes", "fixed"):
        return lambda v: isinstance(v, bytes | bytearray)
    if kind == "array":
        return lambda v: (
            isinstance(v, Sequence) and not isinstance(v, str | bytes | bytearray | tuple)
        )
    return lambda v: isinstance(v, Mapping)  # record, map


class _Reference:
    """Builds the reference encoder: one closure per schema node, records shared by name."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        self._named = named
        self._records: dict[str, _Writer] = {}

    def writer(self, schema: Any) -> _Writer:
        """The writer of one schema node."""
        kind, node = _resolve(schema, self._named)
        build: Callable[[Any], _Writer] = getattr(self, f"_{kind}")
        if kind in _PRIMITIVES:
            return build(_logical(node))
        return build(node)

    def _null(self, logical: Any) -> _Writer:
        def write(out: bytearray, v: Any) -> None:
            if v is not None:
                raise _Invalid(f"expected null, got {_show(v)}")

        return write

    def _boolean(self, logical: Any) -> _Writer:
        def write(out: bytearray, v: Any) -> None:
            if v is True:
                out.append(1)
            elif v is False:
                out.append(0)
            else:
                raise _Invalid(f"expected boolean, got {_show(v)}")

        return write

    def _integer(self, kind: str, logical: Any, low: int, high: int) -> _Writer:
        convert = _int_converter(kind, logical)

        def write(out: bytearray, v: Any) -> None:
            if type(v) is not int:
                v = convert(v)
            if not low <= v <= high:
                raise _Invalid(f"{v} is out of range for {kind} ({low}..{high})")
            out += _uvarint((v << 1) ^ (v >> 63))

        return write

    def _int(self, logical: Any) -> _Writer:
        return self._integer("int", logical, _INT_MIN, _INT_MAX)

    def _long(self, logical: Any) -> _Writer:
        return self._integer("long", logical, _LONG_MIN, _LONG_MAX)

    def _real(self, kind: str, pack: Callable[[float], bytes]) -> _Writer:
        def write(out: bytearray, v: Any) -> None:
            # Ints count (fastavro writes float(v)); bools do not.
            if type(v) is not float and (isinstance(v, bool) or not isinstance(v, numbers.Real)):
                raise _Invalid(f"expected {kind}, got {_show(v)}")
            try:
                out += pack(float(v))
            except OverflowError:
                raise _Invalid(f"{_show(v)} is out of range for {kind}") from None

        return write

    def _float(self, logical: Any) -> _Writer:
        return self._real("float", _PACK_FLOAT)

    def _double(self, logical: Any) -> _Writer:
        return self._real("double", _PACK_DOUBLE)

    def _string(self, logical: Any) -> _Writer:
        def write(out: bytearray, v: Any) -> None:
            if not isinstance(v, str):
                raise _Invalid(f"expected string, got {_show(v)}")
            try:
                data = v.encode()
            except UnicodeEncodeError as exc:
                raise _Invalid(f"string is not encodable as UTF-8 ({exc.reason})") from None
            out += _uvarint(len(data) << 1)
            out += data

        return write

    def _bytes(self, logical: Any) -> _Writer:
        def write(out: bytearray, v: Any) -> None:
            if not isinstance(v, bytes | bytearray):
                raise _Invalid(f"expected bytes, got {_show(v)}")
            out += _uvarint(len(v) << 1)
            out += v

        return write

    def _fixed(self, node: Mapping[str, Any]) -> _Writer:
        name, size = node.get("name"), node.get("size")
        if not isinstance(size, int) or size < 0:
            raise _Invalid(f"schema: fixed {name} has no proper size")

        def write(out: bytearray, v: Any) -> None:
            if not isinstance(v, bytes | bytearray) or len(v) != size:
                raise _Invalid(f"expected {size} bytes for fixed {name}, got {_show(v)}")
            out += v

        return write

    def _enum(self, node: Mapping[str, Any]) -> _Writer:
        name, symbols = node.get("name"), _symbols(node)
        indexes = {symbol: _long_bytes(i) for i, symbol in reversed(list(enumerate(symbols)))}

        def write(out: bytearray, v: Any) -> None:
            if not isinstance(v, str):
                raise _Invalid(f"expected a symbol of enum {name}, got {_show(v)}")
            try:
                out += indexes[v]
            except KeyError:
                raise _Invalid(f"unknown symbol {v!r} of enum {name} {symbols}") from None

        return write

    def _array(self, node: Mapping[str, Any]) -> _Writer:
        items = self.writer(node.get("items"))

        def write(out: bytearray, v: Any) -> None:
            if not isinstance(v, Sequence) or isinstance(v, str | bytes | bytearray):
                raise _Invalid(f"expected a list for array, got {_show(v)}")
            if v:
                out += _uvarint(len(v) << 1)
                for index, item in enumerate(v):
                    try:
                        items(out, item)
                    except _Invalid as exc:
                        exc.segments.append(f"[{index}]")
                        raise
            out.append(0)

        return write

    def _map(self, node: Mapping[str, Any]) -> _Writer:
        values = self.writer(node.get("values"))
        write_key = self._string(None)

        def write(out: bytearray, v: Any) -> None:
            if not isinstance(v, Mapping):
                raise _Invalid(f"expected a mapping for map, got {_show(v)}")
            if v:
                out += _uvarint(len(v) << 1)
                for key, value in v.items():
                    try:
                        if not isinstance(key, str):
                            raise _Invalid(f"map key {_show(key)} is not a string")
                        write_key(out, key)
                        values(out, value)
                    except _Invalid as exc:
                        exc.segments.append(f"[{_REPR.repr(key)}]")
                        raise
            out.append(0)

        return write

    def _record(self, node: Mapping[str, Any]) -> _Writer:
        name = str(node.get("name"))
        if name in self._records:
            return self._records[name]
        # A recursive type meets its own name while its fields are being built: those
        # references go through this forwarder, which finds the finished writer later.
        done: list[_Writer] = []

        def forward(out: bytearray, v: Any) -> None:
            done[0](out, v)

        self._records[name] = forward
        fields: list[tuple[str, _Writer, bool, Any]] = []
        for field in _fields(node):
            try:
                fields.append(
                    (
                        field["name"],
                        self.writer(field["type"]),
                        "default" in field,
                        field.get("default"),
                    )
                )
            except _Invalid as exc:
                exc.segments.append(f".{field['name']}")
                raise

        def write(out: bytearray, v: Any) -> None:
            if not isinstance(v, Mapping):
                raise _Invalid(f"expected a mapping for record {name}, got {_show(v)}")
            for field_name, write_field, has_default, default in fields:
                # get(), not [], so that a defaultdict's factory does not stand in for
                # the schema's default (fastavro asks `name in datum`).
                value = v.get(field_name, _MISSING)
                try:
                    if value is not _MISSING:
                        write_field(out, value)
                    elif not has_default:
                        raise _Invalid("missing, and the field has no default")
                    else:
                        try:
                            write_field(out, default)
                        except _Invalid as exc:
                            raise _Invalid(
                                f"missing, and its default does not fit: {exc.problem}"
                            ) from None
                except _Invalid as exc:
                    exc.segments.append(f".{field_name}")
                    raise

        done.append(write)
        self._records[name] = write
        return write

    def _union(self, branches: list[Any]) -> _Writer:
        kinds = [_resolve(branch, self._named)[0] for branch in branches]
        if "union" in kinds or not kinds:
            raise _Invalid(f"schema: bad union {_label(branches, self._named)}")
        writers = [self.writer(branch) for branch in branches]
        prefixes = [_long_bytes(i) for i in range(len(branches))]
        label = _label(branches, self._named)
        null = kinds.index("null") if "null" in kinds else -1
        others = [i for i, kind in enumerate(kinds) if kind != "null"]

        if null >= 0 and len(others) == 1:
            # ["null", T]: fastavro can only pick T for a value that is not None.
            null_prefix, (index,) = prefixes[null], others
            prefix, write_other = prefixes[index], writers[index]

            def write_nullable(out: bytearray, v: Any) -> None:
                if v is None:
                    out += null_prefix
                else:
                    out += prefix
                    write_other(out, v)

            return write_nullable

        accepts = [_accepts(kind) for kind in kinds]
        record_fields = [
            frozenset(f["name"] for f in _fields(_resolve(branch, self._named)[1]))
            if kind == "record"
            else None
            for branch, kind in zip(branches, kinds, strict=True)
        ]

        def write(out: bytearray, v: Any) -> None:
            if v is None:
                if null < 0:
                    raise _Invalid(f"null is not a branch of union {label}")
                out += prefixes[null]
                return
            if isinstance(v, tuple):
                raise _Invalid(
                    f"tuple for union {label}: fastavro reads it as (type name, value); give a list"
                )
            # fastavro's choice: the first branch the value validates against, except that
            # among records the one sharing most field names wins (a later map or other
            # type still ends the search), and a float branch gives way to a later double.
            best, best_fields, best_data = -1, -1, bytearray()
            failures: list[_Invalid] = []
            could_be_float = False
            for i, kind in enumerate(kinds):
                if could_be_float:
                    if kind == "double":
                        best_data = bytearray()
                        writers[i](best_data, v)
                        best = i
                        break
                    continue
                if not accepts[i](v):
                    continue
                data = bytearray()
                try:
                    writers[i](data, v)
                except _Invalid as exc:
                    failures.append(exc)
                    continue
                if kind == "record":
                    shared = len(cast(frozenset[str], record_fields[i]).intersection(v))
                    if shared > best_fields:
                        best, best_fields, best_data = i, shared, data
                elif kind == "float":
                    best, best_data, could_be_float = i, data, True
                else:
                    best, best_data = i, data
                    break
            if best < 0:
                if len(failures) == 1:
                    raise failures[0]  # the only branch of the right type says what is wrong
                raise _Invalid(f"{_show(v)} matches no branch of union {label}")
            out += prefixes[best]
            out += best_data

        return write


# -- the fast encoder: generated source ---------------------------------------------------


def _latin1(data: bytes) -> str:
    return data.decode("latin-1")


def _uvarint_text(z: int) -> str:
    """``_uvarint`` as a latin-1 str (one char per byte), the fast encoder's unit."""
    return _UVARINT_TEXT[z] if z < _SMALL else _uvarint(z).decode("latin-1")


_UVARINT_TEXT = tuple(_latin1(data) for data in _UVARINT)


def _utf8(value: Any, head: str) -> str:
    """A non-ASCII string, UTF-8 bytes as latin-1 chars, after ``head`` and its length."""
    if not isinstance(value, str):
        raise _Fallback
    data = value.encode()  # lone surrogates raise: the reference encoder reports them
    return head + _uvarint_text(len(data) << 1) + data.decode("latin-1")


class _Generator:
    """Generates the fast encoder: straight-line code per field, nested records inlined.

    Only the top-level record and types that contain themselves get a function of their
    own (a call costs about as much as a few fields).

    The generated code appends latin-1 strs (one char per byte) to a list and the caller
    joins them and encodes the result as latin-1 once: cheaper than growing a bytearray,
    and ASCII strings (all our data) go in as they are, without encoding each. The join
    refuses anything but strs, so a bytes value that slipped past ``isascii()`` falls back.
    Every other check is exact (``type(v) is int``, not ``isinstance``) and anything unusual
    raises, after which the reference encoder deals with the value from scratch.
    """

    def __init__(self, named: Mapping[str, Any], reference: _Reference) -> None:
        self._named = named
        self._reference = reference
        self._namespace: dict[str, Any] = {
            "_Fallback": _Fallback,
            "_U": _UVARINT_TEXT,
            "_uvarint_text": _uvarint_text,
            "_utf8": _utf8,
            "_pack_f": _PACK_FLOAT,
            "_pack_d": _PACK_DOUBLE,
        }
        self._constants: dict[tuple[str, Any], str] = {}
        self._records: dict[str, str] = {}
        self._pending: list[tuple[str, Mapping[str, Any]]] = []
        self._sources: list[str] = []
        self._inlining: list[str] = []
        self._counter = 0

    def build(self, schema: Any) -> Callable[[Callable[[str], None], Any], None]:
        """Generate and compile the code; return the entry function ``(append, value)``."""
        kind, node = _resolve(schema, self._named)
        if kind == "record":
            entry = self._record_function(node)
        else:
            entry = "_top"
            lines = ["def _top(ap, v):"]
            self._emit(schema, "v", b"", "    ", 0, lines)
            self._sources.append("\n".join(lines))
        while self._pending:
            self._sources.append(self._record_source(*self._pending.pop()))
        source = "\n\n".join(self._sources) + "\n"
        exec(compile(source, "<producer.avro generated encoder>", "exec"), self._namespace)
        return cast(Callable[[Callable[[str], None], Any], None], self._namespace[entry])

    def source(self) -> str:
        """The generated source (for reading and debugging)."""
        return "\n\n".join(self._sources) + "\n"

    def _const(self, kind: str, key: Any, make: Callable[[], Any]) -> str:
        name = self._constants.get((kind, key))
        if name is None:
            name = self._constants[(kind, key)] = f"_{kind}{len(self._constants)}"
            self._namespace[name] = make()
        return name

    def _text(self, data: bytes) -> str:
        """A constant as a literal: the latin-1 str of some bytes."""
        return repr(_latin1(data))

    def _record_function(self, node: Mapping[str, Any]) -> str:
        name = str(node.get("name"))
        function = self._records.get(name)
        if function is None:
            function = self._records[name] = f"_record{len(self._records)}"
            self._pending.append((function, node))
        return function

    def _record_source(self, function: str, node: Mapping[str, Any]) -> str:
        # Schema text only ever enters the source through repr(): a name cannot break out.
        lines = [f"def {function}(ap, d):  # {node.get('name')!r}"]
        self._emit_record(node, "d", "    ", 0, lines)
        return "\n".join(lines)

    def _emit_record(
        self, node: Mapping[str, Any], var: str, ind: str, depth: int, lines: list[str]
    ) -> None:
        """A record's fields, inline; a record met again inside itself calls its function."""
        name = str(node.get("name"))
        self._inlining.append(name)
        fields = _fields(node)
        values = [f"r{self._uid()}" for _ in fields]
        lines += [f"{ind}if type({var}) is not dict:", f"{ind}    raise _Fallback"]
        if fields:
            # One C call fetches every field; a missing key takes the slower way, which
            # puts in the defaults (fastavro writes a default like a given value) and
            # raises KeyError for a missing field without one.
            names = [field["name"] for field in fields]
            getter = self._const("G", tuple(names), lambda: operator.itemgetter(*names))
            fill = self._const("F", (name, tuple(names)), lambda: _filler(fields))
            unpack = "(" + ", ".join(values) + ",)"
            fetch = f"({getter}({var}),)" if len(fields) == 1 else f"{getter}({var})"
            lines += [
                f"{ind}try:",
                f"{ind}    {unpack} = {fetch}",
                f"{ind}except KeyError:",
                f"{ind}    {unpack} = {fill}({var})",
            ]
        for field, value in zip(fields, values, strict=True):
            lines.append(f"{ind}# {name!r}.{field['name']!r}")
            self._emit(field["type"], value, b"", ind, depth, lines)
        if not fields:
            lines.append(f"{ind}pass")
        self._inlining.pop()

    def _uid(self) -> int:
        self._counter += 1
        return self._counter

    def _write_prefix(self, prefix: bytes, ind: str, lines: list[str]) -> None:
        if prefix:
            lines.append(f"{ind}ap({self._text(prefix)})")

    def _emit(
        self, schema: Any, var: str, prefix: bytes, ind: str, depth: int, lines: list[str]
    ) -> None:
        """Lines appending ``prefix`` (a union index, or nothing) and then the value in ``var``."""
        kind, node = _resolve(schema, self._named)
        n, z, x, k = (f"{name}{depth}" for name in "nzxk")
        fallback = f"{ind}    raise _Fallback"
        head = self._text(prefix)
        if kind == "string":
            # ASCII: the chars are the UTF-8 bytes. (A bytes value passes isascii() too, but
            # the final join refuses it.) Otherwise _utf8 encodes, or falls back.
            heads = self._const(
                "H", prefix, lambda: tuple(_latin1(prefix + _uvarint(i << 1)) for i in range(256))
            )
            lines += [
                f"{ind}if {var}.isascii():",
                f"{ind}    {n} = len({var})",
                f"{ind}    ap({heads}[{n}] if {n} < 256 else {head} + _uvarint_text({n} << 1))",
                f"{ind}    ap({var})",
                f"{ind}else:",
                f"{ind}    ap(_utf8({var}, {head}))",
            ]
        elif kind == "bytes":
            lines += [f"{ind}if type({var}) is not bytes:", fallback]
            lines.append(
                f"{ind}ap({head} + _uvarint_text(len({var}) << 1) + {var}.decode('latin-1'))"
            )
        elif kind == "int" or kind == "long":
            logical = _logical(node)
            low, high = (_INT_MIN, _INT_MAX) if kind == "int" else (_LONG_MIN, _LONG_MAX)
            convert = _int_converter(kind, logical)
            if logical in ("timestamp-millis", "timestamp-micros", "date"):
                fix = (
                    f"{ind}    {var} = {self._const('C', (kind, logical), lambda: convert)}({var})"
                )
            else:
                fix = fallback
            lines += [f"{ind}if type({var}) is not int:", fix]
            lines += [f"{ind}if not {low} <= {var} <= {high}:", fallback]
            self._write_prefix(prefix, ind, lines)
            lines += [
                f"{ind}{z} = ({var} << 1) ^ ({var} >> 63)",
                f"{ind}ap(_U[{z}] if {z} < {_SMALL} else _uvarint_text({z}))",
            ]
        elif kind == "float" or kind == "double":
            lines += [f"{ind}if type({var}) is not float:", fallback]
            self._write_prefix(prefix, ind, lines)
            lines.append(
                f"{ind}ap({'_pack_f' if kind == 'float' else '_pack_d'}({var}).decode('latin-1'))"
            )
        elif kind == "boolean":
            true, false = self._text(prefix + b"\x01"), self._text(prefix + b"\x00")
            lines += [f"{ind}if {var} is True:", f"{ind}    ap({true})"]
            lines += [f"{ind}elif {var} is False:", f"{ind}    ap({false})"]
            lines += [f"{ind}else:", fallback]
        elif kind == "null":
            lines += [f"{ind}if {var} is not None:", fallback]
            self._write_prefix(prefix, ind, lines)
        elif kind == "enum":
            symbols = _symbols(node)
            # The symbol's whole encoding, union index included; a KeyError falls back.
            table = self._const(
                "E",
                (prefix, tuple(symbols)),
                lambda: {
                    s: _latin1(prefix + _long_bytes(i))
                    for i, s in reversed(list(enumerate(symbols)))
                },
            )
            lines.append(f"{ind}ap({table}[{var}])")
        elif kind == "fixed":
            size = node.get("size")
            if type(size) is not int:
                raise _Invalid(f"schema: fixed {node.get('name')} has no proper size")
            lines += [f"{ind}if type({var}) is not bytes or len({var}) != {size}:", fallback]
            self._write_prefix(prefix, ind, lines)
            lines.append(f"{ind}ap({var}.decode('latin-1'))")
        elif kind == "array" or kind == "map":
            exact = "list" if kind == "array" else "dict"
            lines += [f"{ind}if type({var}) is not {exact}:", fallback]
            self._write_prefix(prefix, ind, lines)
            lines += [f"{ind}if {var}:", f"{ind}    ap(_uvarint_text(len({var}) << 1))"]
            if kind == "array":
                lines.append(f"{ind}    for {x} in {var}:")
            else:
                lines.append(f"{ind}    for {k}, {x} in {var}.items():")
                self._emit("string", k, b"", ind + "        ", depth + 1, lines)
            self._emit(
                node.get("items" if kind == "array" else "values"),
                x,
                b"",
                ind + "        ",
                depth + 1,
                lines,
            )
            lines.append(f"{ind}ap('\\x00')")
        elif kind == "record":
            self._write_prefix(prefix, ind, lines)
            if str(node.get("name")) in self._inlining:
                lines.append(f"{ind}{self._record_function(node)}(ap, {var})")
            else:
                self._emit_record(node, var, ind, depth, lines)
        elif kind == "union":
            self._emit_union(node, var, prefix, ind, depth, lines)
        else:  # pragma: no cover - _resolve returns only the kinds above
            raise AssertionError(kind)

    def _emit_union(
        self, branches: list[Any], var: str, prefix: bytes, ind: str, depth: int, lines: list[str]
    ) -> None:
        kinds = [_resolve(branch, self._named)[0] for branch in branches]
        others = [i for i, kind in enumerate(kinds) if kind != "null"]
        if not prefix and "null" in kinds and len(others) == 1 and kinds[others[0]] != "union":
            # ["null", T]: None is the null branch; anything else is T or falls back.
            null = self._text(_long_bytes(kinds.index("null")))
            lines += [f"{ind}if {var} is None:", f"{ind}    ap({null})", f"{ind}else:"]
            index = others[0]
            self._emit(branches[index], var, _long_bytes(index), ind + "    ", depth, lines)
            return
        # Any other union: the reference writer picks the branch (its errors fall back).
        self._write_prefix(prefix, ind, lines)
        writer = self._reference.writer(branches)
        name = self._const("W", id(writer), lambda: _as_text(writer))
        lines.append(f"{ind}ap({name}({var}))")


def _as_text(writer: _Writer) -> Callable[[Any], str]:
    def text(value: Any) -> str:
        out = bytearray()
        writer(out, value)
        return out.decode("latin-1")

    return text


def _filler(fields: list[Mapping[str, Any]]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The field values of a record in order, defaults for missing keys; KeyError if no default."""
    plan = [(f["name"], "default" in f, f.get("default")) for f in fields]

    def fill(d: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            d[name] if name in d or not has_default else default
            for name, has_default, default in plan
        )

    return fill


# -- the public function ---------------------------------------------------------------------


def compile_encoder(parsed_schema: Any) -> Encoder:
    """Compile an Avro binary encoder for ``parsed_schema`` (``load_schema(name).parsed``).

    The encoder takes a value (a mapping for a record schema) and returns its Avro binary
    encoding, the bytes ``fastavro.schemaless_writer`` writes for it. A value that does
    not fit raises ``AvroEncodeError`` (a ``SerializationError``) naming the path of the
    offending field; so does a schema this module cannot encode, at compile time. Compile
    once per schema and reuse: compiling costs milliseconds, encoding microseconds.
    """
    schema, named, name = _prepare(parsed_schema)
    reference = _reference_encoder(schema, named, name)
    try:
        fast = _Generator(named, _Reference(named)).build(schema)
    except (_Invalid, SyntaxError, RecursionError, MemoryError):  # pragma: no cover
        return reference  # e.g. more nested blocks than Python compiles: checking encoder only

    def encode(value: Mapping[str, Any]) -> bytes:
        parts: list[str] = []
        try:
            fast(parts.append, value)
            return "".join(parts).encode("latin-1")
        except Exception:
            # A rare or wrong value: start again with the checking encoder.
            return reference(value)

    encode.__doc__ = f"Encode a value of {name} as Avro binary."
    return encode


def _prepare(parsed_schema: Any) -> tuple[Any, dict[str, Any], str]:
    schema = parsed_schema
    if isinstance(schema, Mapping) and "__fastavro_parsed" not in schema:
        # A schema straight from JSON: let fastavro resolve namespaces and short names.
        schema = fastavro.parse_schema(dict(schema))
    elif isinstance(schema, list) and any(
        isinstance(branch, Mapping) and "__fastavro_parsed" not in branch for branch in schema
    ):
        # A union straight from JSON: its records' names need resolving too.
        schema = fastavro.parse_schema(list(schema))
    named: dict[str, Any] = {}
    _collect_named(schema, named)
    if isinstance(schema, Mapping) and isinstance(schema.get("__named_schemas"), Mapping):
        for full_name, definition in schema["__named_schemas"].items():
            named.setdefault(full_name, definition)
    return schema, named, _label(schema, named)


def _reference_encoder(schema: Any, named: Mapping[str, Any], name: str) -> Encoder:
    try:
        writer = _Reference(named).writer(schema)
    except _Invalid as exc:
        raise AvroEncodeError(name, exc.path(), exc.problem) from None

    def encode(value: Mapping[str, Any]) -> bytes:
        out = bytearray()
        try:
            writer(out, value)
        except _Invalid as exc:
            raise AvroEncodeError(name, exc.path(), exc.problem) from None
        except RecursionError:
            raise AvroEncodeError(name, "", "value is nested too deeply") from None
        return bytes(out)

    return encode


def _closure_encoder(parsed_schema: Any) -> Encoder:
    """The reference encoder alone (the closure tree), for tests and the benchmark."""
    return _reference_encoder(*_prepare(parsed_schema))
