"""Property-based tests (Hypothesis) of what reaches the piece from outside while it runs: OSC
datagrams, MIDI messages through the mapping table and MIDI learn, the small languages of the
mapping table and the mappings file MIDI learn writes.

Each property: whatever arrives is either taken, leaving the piece within its limits (speed,
decay, pinned symptoms, progress, every intensity finite and in range), or dropped and logged, or
refused with the project's own error (a SettingsError; spec.py's ValueErrors saying what is
allowed). Never another exception, and never the last-resort catch in Inputs.drain: a handler that
raised there is a bug, even though the show goes on.

The example budget is the "ci" profile in conftest.py (HYPOTHESIS_PROFILE=hunt tries many more).
"""
import logging
import math
import types

import mido
import pytest
import yaml
from hypothesis import example, given, strategies as st
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from installation.inputs import learn as learning, spec
from installation.inputs.live import Inputs
from installation.inputs.midi import learned_spec
from installation.inputs.osc import read_datagram
from installation.piece import Piece
from installation.settings import PARAMETER_LIMITS, SYMPTOM_NAMES, Settings, SettingsError, settings_from_dict

from test_inputs import QUIET

DEFAULTS = Settings()
ADDRESSES = sorted({row.osc for row in DEFAULTS.inputs.map.values() if row.osc} | {"/scene", "/state/progress"})
SCENES = sorted(DEFAULTS.inputs.scenes)
ODD_NUMBERS = [math.nan, math.inf, -math.inf, 1e30, -1e30, 1e308, 5e-324, -0.0, 0.0, 1.0, -1.0, 0.5, 64.0, 65.0]

text = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=12)


# ------------------------------------------------------------------ the rig: a piece, its inputs

@pytest.fixture(scope="module")
def rig_settings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    return settings_from_dict({}, [*QUIET, f"inputs.mappings_file={folder / 'mappings.yaml'}",
                                   "inputs.map.decay.smoothing_s=0", "inputs.map.speed.takeover=false"])


class _Errors(logging.Handler):
    """Records at ERROR and above from the piece's loggers: Inputs.drain's last-resort catch."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen = []

    def emit(self, record):
        self.seen.append(record.getMessage())


def _fresh(settings):
    settings.beside_settings(settings.inputs.mappings_file).unlink(missing_ok=True)
    return Piece(settings), Inputs(settings)


def _drain(inputs, piece, events, now=0.0):
    errors = _Errors()
    logger = logging.getLogger("lapses")
    logger.addHandler(errors)
    try:
        for k, event in enumerate(events):
            inputs.post(event)
            inputs.drain(piece, now + 0.05 * k)
        inputs.drain(piece, now + 0.05 * len(events) + 10.0)      # every glide and fade at its end
    finally:
        logger.removeHandler(errors)
    assert not errors.seen, errors.seen


def assert_within_limits(piece):
    lo, hi = PARAMETER_LIMITS["speed"]
    assert lo <= piece.speed <= hi, piece.speed
    state = piece.course_state
    assert math.isfinite(state.elapsed_s) and state.elapsed_s >= 0.0, state
    assert -1.0 <= state.overrides.decay <= 1.0, state.overrides
    assert set(state.overrides.pinned) <= set(SYMPTOM_NAMES), state.overrides
    assert all(0.0 <= v <= 1.0 for v in state.overrides.pinned.values()), state.overrides
    sample = piece.sample()
    assert 0.0 <= sample.point.progress <= 1.0 and 0.0 <= sample.lucid <= 1.0, sample
    assert all(0.0 <= v <= 1.0 for v in sample.intensities.values()), sample.intensities


# ------------------------------------------------------------------ OSC datagrams

osc_arg = st.one_of(
    st.tuples(st.floats(width=32) | st.sampled_from([x for x in ODD_NUMBERS if abs(x) < 3e38 or math.isinf(x)
                                                      or math.isnan(x)]), st.just("f")),
    st.tuples(st.floats() | st.sampled_from(ODD_NUMBERS), st.just("d")),
    st.tuples(st.integers(-2 ** 31, 2 ** 31 - 1) | st.sampled_from([0, 1, -1, 2 ** 31 - 1]), st.just("i")),
    st.tuples(st.integers(-2 ** 63, 2 ** 63 - 1), st.just("h")),
    st.tuples(text | st.sampled_from(SCENES), st.just("s")),
    st.tuples(st.binary(min_size=1, max_size=12), st.just("b")),         # python-osc builds no empty blob
    st.tuples(st.just(True), st.just("T")), st.tuples(st.just(False), st.just("F")),
    st.tuples(st.none(), st.just("N")),
    st.tuples(st.tuples(*[st.integers(0, 255)] * 4), st.just("m")),
    st.tuples(st.integers(0, 2 ** 32 - 1), st.just("r")),
)
osc_address = st.sampled_from(ADDRESSES) | text.map(lambda t: "/" + t)


@st.composite
def osc_message(draw):
    address = draw(osc_address)
    args = draw(st.lists(osc_arg, max_size=3))
    builder = OscMessageBuilder(address)
    for value, tag in args:
        builder.add_arg(value, tag)
    return address, args, builder.build()


def _bundle(messages):
    builder = OscBundleBuilder(IMMEDIATELY)
    for m in messages:
        builder.add_content(m)
    return builder.build().dgram


well_formed = st.one_of(osc_message().map(lambda m: m[2].dgram),
                        st.lists(osc_message().map(lambda m: m[2]), min_size=0, max_size=3).map(_bundle))


@st.composite
def damaged(draw):
    """A well-formed datagram cut short, with a byte changed, or with bytes added."""
    data = bytearray(draw(well_formed))
    how = draw(st.sampled_from(["cut", "flip", "append"]))
    if how == "cut":
        del data[draw(st.integers(0, max(0, len(data) - 1))):]
    elif how == "flip" and data:
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    else:
        data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


datagram = st.one_of(well_formed, damaged(), st.binary(max_size=48),
                     st.binary(max_size=40).map(lambda b: b"/decay\0\0" + b),
                     st.binary(max_size=40).map(lambda b: b"#bundle\0" + b))


@given(datagram)
@example(b"")
@example(b"#bundle\0" + b"\0" * 8 + (2 ** 31 - 1).to_bytes(4, "big"))            # an element claiming 2 GB
@example(b"#bundle\0" + b"\0" * 8 + (-4).to_bytes(4, "big", signed=True) + b"\0" * 4)
@example(b"/decay\0\0,b\0\0" + (2 ** 31 - 1).to_bytes(4, "big"))                 # a blob claiming 2 GB
@example(b"/decay\0\0,s\0\0abcd")                                                  # a string without its end
@example(b"/\xff\xfe\0,f\0\0" + b"\0" * 4)                                          # an address not UTF-8
def test_any_datagram_is_messages_or_a_reason_never_an_exception(data):
    messages, why = read_datagram(data)
    if why is not None:
        assert isinstance(why, str) and why and messages == []
        return
    for address, args in messages:
        assert isinstance(address, str) and isinstance(args, tuple)


@given(osc_message())
def test_a_well_formed_message_is_read_as_it_was_sent(message):
    address, args, built = message
    messages, why = read_datagram(built.dgram)
    assert why is None and len(messages) == 1
    got_address, got_args = messages[0]
    assert got_address == address and len(got_args) == len(args)


@given(st.lists(datagram, max_size=6))
@example([OscMessageBuilder("/decay").build().dgram])                               # no argument
def test_whatever_osc_brings_the_piece_stays_within_its_limits(rig_settings, datagrams):
    piece, inputs = _fresh(rig_settings)
    events = [("osc", address, args) for d in datagrams for address, args in read_datagram(d)[0]]
    _drain(inputs, piece, events)
    assert_within_limits(piece)


@given(st.sampled_from(ADDRESSES), st.sampled_from(ODD_NUMBERS) | st.integers(-2 ** 63, 2 ** 63 - 1)
       | st.floats() | text | st.binary(max_size=4) | st.booleans() | st.none())
def test_each_address_with_any_one_argument(rig_settings, address, value):
    piece, inputs = _fresh(rig_settings)
    _drain(inputs, piece, [("osc", address, (value,)), ("osc", address, (value, value)), ("osc", address, ())])
    assert_within_limits(piece)


# ------------------------------------------------------------------ MIDI through the mapper and learn

ch, d7 = st.integers(0, 15), st.integers(0, 127)
mapped_cc = st.sampled_from([1, 3, 35, 85, 20, 64, *range(102, 120)]) | d7       # the table's, and any
mapped_note = st.sampled_from(list(range(36, 52))) | d7
midi_message = st.one_of(
    st.builds(lambda c, n, v: mido.Message("control_change", channel=c, control=n, value=v), ch, mapped_cc,
              st.sampled_from([0, 63, 64, 127]) | d7),
    st.builds(lambda c, n, v: mido.Message("note_on", channel=c, note=n, velocity=v), ch, mapped_note, d7),
    st.builds(lambda c, n, v: mido.Message("note_off", channel=c, note=n, velocity=v), ch, mapped_note, d7),
    st.builds(lambda c, p: mido.Message("pitchwheel", channel=c, pitch=p), ch,
              st.sampled_from([-8192, 0, 8191]) | st.integers(-8192, 8191)),
    st.builds(lambda c, v: mido.Message("aftertouch", channel=c, value=v), ch, d7),
    st.builds(lambda c, n, v: mido.Message("polytouch", channel=c, note=n, value=v), ch, d7, d7),
    st.builds(lambda c, p: mido.Message("program_change", channel=c, program=p), ch, d7),
    st.builds(lambda data: mido.Message("sysex", data=data), st.lists(d7, max_size=16)),
    st.builds(lambda p: mido.Message("songpos", pos=p), st.integers(0, 16383)),
    st.builds(lambda t, v: mido.Message("quarter_frame", frame_type=t, frame_value=v), st.integers(0, 7),
              st.integers(0, 15)),
    st.sampled_from(["clock", "start", "stop", "continue", "reset", "active_sensing", "tune_request"]).map(mido.Message),
)
# raw bytes from a misbehaving device, as mido's parser makes messages of them (it drops what is not MIDI)
raw_midi = st.binary(max_size=24).map(mido.parse_all)
# an object that only looks like a message (a backend or a test handing over something else)
odd_number = st.integers(-300, 300) | st.sampled_from([1.5, math.nan, "1", None, True])
look_alike = st.builds(types.SimpleNamespace, type=st.sampled_from(["control_change", "note_on", "pitchwheel", "sysex"]),
                       channel=odd_number, control=odd_number, value=odd_number, note=odd_number,
                       velocity=odd_number, pitch=odd_number)
learn_keys = st.sampled_from([("action", "learn"), ("action", "select_next"), ("action", "select_prev")])
midi_events = st.lists(st.one_of(midi_message.map(lambda m: [m]), raw_midi, look_alike.map(lambda m: [m]),
                                 learn_keys.map(lambda k: [k])), max_size=24)


def _as_events(groups):
    return [e if isinstance(e, tuple) else ("midi", e, "fake") for group in groups for e in group]


@given(midi_events)
@example([[("action", "learn")], [types.SimpleNamespace(type="control_change", channel=99, control=300, value=127)]])
def test_whatever_midi_brings_the_piece_stays_within_its_limits_and_learn_saves_what_the_next_start_reads(
        rig_settings, groups):
    piece, inputs = _fresh(rig_settings)
    _drain(inputs, piece, _as_events(groups))
    assert_within_limits(piece)
    path = rig_settings.beside_settings(rig_settings.inputs.mappings_file)
    if path.exists():                            # MIDI learn wrote it: the next start must read it back
        again = Inputs(rig_settings)
        assert again.learned == inputs.learned
        for target, text_ in again.learned.items():
            assert text_ == "" or spec.parse_midi(text_) is not None


@given(st.one_of(midi_message, look_alike), st.booleans())
@example(types.SimpleNamespace(type="note_on", channel=20, note=200, velocity=100), False)
def test_a_learned_control_is_one_the_table_accepts(msg, for_parameter):
    learned = learned_spec(msg, for_parameter)
    if learned is not None:
        assert spec.parse_midi(learned.text()) == learned
        assert learned.continuous == for_parameter or learned.kind == "cc"


# ------------------------------------------------------------------ the mapping table's small languages

spec_like = st.from_regex(r"\A *(ch *[0-9]{1,3} +)?((cc14|cc|note) *[0-9]{1,4}|pitchbend) *\Z")


@given(spec_like | text | st.text(max_size=12))
@example("ch 16 cc14 31")
@example("cc \u0663")                        # an Arabic-Indic three: a digit to Python
def test_a_midi_spec_is_parsed_to_what_it_says_or_refused_saying_what_is_allowed(t):
    try:
        parsed = spec.parse_midi(t)
    except ValueError as e:
        assert "allowed" in str(e), e
        return
    if parsed is None:
        assert not t.strip()
        return
    assert parsed.channel is None or 1 <= parsed.channel <= 16
    assert 0 <= parsed.number <= (31 if parsed.kind == "cc14" else 127)
    assert spec.parse_midi(parsed.text()) == parsed


@given(text | st.from_regex(r"\A[a-z0-9.]{0,8}:[0-9\u00b2\u0663]{0,6}\Z"))
@example("localhost:\u00b2")                # a superscript two: str.isdigit says yes, int() says no
@example("host:99999")
def test_host_port_addresses(t):
    try:
        parsed = spec.parse_host_port(t)
    except ValueError as e:
        assert "allowed" in str(e), e
        return
    if parsed is not None:
        host, port = parsed
        assert host and 1 <= port <= 65535


@given(text | st.sampled_from(ADDRESSES))
def test_osc_addresses_and_port_patterns(t):
    for check in (spec.check_osc_address, spec.port_patterns):
        try:
            check(t)
        except ValueError as e:
            assert "allowed" in str(e), e


# ------------------------------------------------------------------ the mappings file MIDI learn writes

targets = st.sampled_from(learning.targets(DEFAULTS.inputs.map, DEFAULTS.inputs.scenes)) | text
spec_values = spec_like | text | st.integers() | st.floats() | st.none() | st.booleans() | st.lists(st.integers(), max_size=2)
mappings_docs = st.one_of(
    st.dictionaries(targets, spec_values, max_size=4).map(lambda d: yaml.safe_dump({"midi": d})),
    st.dictionaries(text, spec_values, max_size=3).map(yaml.safe_dump),
    text,
)


@given(mappings_docs | st.binary(max_size=24))
@example(b"\xff\xfe not UTF-8")
@example("midi:\n  decay: " + "[" * 2000)          # nested deeper than the YAML parser recurses
@example("midi: [1, 2]")
def test_the_mappings_file_is_read_or_refused_naming_itself(tmp_path_factory, doc):
    path = tmp_path_factory.getbasetemp() / "mappings-property.yaml"
    path.write_bytes(doc if isinstance(doc, bytes) else doc.encode("utf-8"))
    try:
        learned = learning.load_mappings(path, DEFAULTS.inputs.map, DEFAULTS.inputs.scenes)
    except SettingsError as e:
        assert str(path) in str(e), e
        return
    for target, t in learned.items():
        assert target in learning.targets(DEFAULTS.inputs.map, DEFAULTS.inputs.scenes)
        assert t == "" or spec.parse_midi(t) is not None
