"""The filter that decides whether the controller's connection files are stale."""

from __future__ import annotations

import copy

import pytest
from ipp_connection import FilterModule, connection_matches, connection_ports

# The shape ipcontroller 9.2 writes (key removed), for ip 0.0.0.0 and ports 10101-10120.
ENGINE_FILE = {
    "ssh": "",
    "interface": "tcp://0.0.0.0",
    "registration": 10101,
    "control": 10102,
    "mux": 10103,
    "task": 10104,
    "iopub": 10105,
    "hb_ping": 10106,
    "hb_pong": 10107,
    "broadcast": [10108, 10109],
    "key": "",
    "curve_serverkey": None,
    "location": "cl-0",
    "pack": "json",
    "unpack": "json",
    "signature_scheme": "hmac-sha256",
}
CLIENT_FILE = {
    "ssh": "",
    "interface": "tcp://0.0.0.0",
    "registration": 10101,
    "control": 10110,
    "mux": 10111,
    "task": 10112,
    "task_scheme": "leastload",
    "iopub": 10113,
    "notification": 10114,
    "broadcast": 10115,
    "key": "",
    "location": "cl-0",
}


def test_ports_are_collected_from_ints_and_lists() -> None:
    assert connection_ports(ENGINE_FILE) == list(range(10101, 10110))
    assert connection_ports(CLIENT_FILE) == [10101, *range(10110, 10116)]


@pytest.mark.parametrize("info", [ENGINE_FILE, CLIENT_FILE])
def test_a_file_for_the_same_settings_matches(info: dict[str, object]) -> None:
    assert connection_matches(info, "0.0.0.0", "cl-0", 10101, 10120)


@pytest.mark.parametrize(
    ("ip", "location", "low", "high"),
    [
        ("10.0.0.5", "cl-0", 10101, 10120),  # another listen address
        ("0.0.0.0", "cl-0.example.org", 10101, 10120),  # another location
        ("0.0.0.0", "cl-0", 10201, 10220),  # another port range
        ("0.0.0.0", "cl-0", 10101, 10105),  # a range that no longer holds every port
    ],
)
def test_a_file_for_other_settings_does_not_match(ip: str, location: str, low: int, high: int) -> None:
    assert not connection_matches(ENGINE_FILE, ip, location, low, high)


def test_curve_must_agree_with_the_file() -> None:
    with_curve = {**ENGINE_FILE, "key": "", "curve_serverkey": "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"}
    assert connection_matches(with_curve, "0.0.0.0", "cl-0", 10101, 10120, True)
    # Turned on or off: the files must be written again.
    assert not connection_matches(ENGINE_FILE, "0.0.0.0", "cl-0", 10101, 10120, True)
    assert not connection_matches(with_curve, "0.0.0.0", "cl-0", 10101, 10120, False)
    # Strings as an INI inventory or -e gives them are read as Ansible reads booleans.
    assert not connection_matches(with_curve, "0.0.0.0", "cl-0", 10101, 10120, "false")
    assert connection_matches(with_curve, "0.0.0.0", "cl-0", 10101, 10120, "yes")
    # A file without the key at all: no curve.
    assert connection_matches(CLIENT_FILE, "0.0.0.0", "cl-0", 10101, 10120, False)


def test_a_file_without_ports_does_not_match() -> None:
    info = copy.deepcopy(ENGINE_FILE)
    for key in ("registration", "control", "mux", "task", "iopub", "hb_ping", "hb_pong", "broadcast"):
        del info[key]
    assert not connection_matches(info, "0.0.0.0", "cl-0", 10101, 10120)


def test_the_filters_are_registered_under_their_names() -> None:
    filters = FilterModule().filters()
    assert filters["ipp_connection_matches"] is connection_matches
    assert filters["ipp_connection_ports"] is connection_ports
