"""The filter that turns unit names into engine instance numbers."""

from __future__ import annotations

from ipp_units import FilterModule, engine_numbers


def test_engine_instances_give_their_numbers_sorted_and_once() -> None:
    units = ["ipp-engine@10.service", "ipp-controller.service", "ipp-engine@2.service", "ipp-engine@2.service"]
    assert engine_numbers(units) == [2, 10]


def test_other_names_give_nothing() -> None:
    assert engine_numbers(["ipp-engine@.service", "ipp-engine@x.service", "my-ipp-engine@3.service", ""]) == []
    assert engine_numbers(["ipp-engine@3.service.d", "ipp-engine@3.socket"]) == []


def test_the_filters_are_registered_under_their_names() -> None:
    filters = FilterModule().filters()
    assert filters["ipp_engine_numbers"] is engine_numbers
