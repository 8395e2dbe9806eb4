"""One definition of a measurement record (``MeasurementRecord``): the wire contract, the store table, the
export's columns and types, and the measured objectives are each checked against it."""

from __future__ import annotations

import dataclasses

import pytest
from google.protobuf.descriptor import FieldDescriptor

from hwnas.controller.fleet.campaign import to_record
from hwnas.controller.fleet.client import message_dict
from hwnas.controller.search.objectives import OBJECTIVES
from hwnas.controller.store import Job, MeasurementRecord, schema
from hwnas.controller.store.export import ARCH_COLUMNS, COLUMNS, column_type
from hwnas.controller.store.records import NOT_STORED, POWER_COLUMNS, STAT_COLUMNS
from hwnas.protos.hwnas.v1 import agent_pb2

TABLE = [c for c in schema.measurements.c.keys() if c != "id"]


def _fill(message, seed: list[int]) -> None:
    """Set every field of ``message`` (recursively) to a distinct non-default value."""
    for f in message.DESCRIPTOR.fields:
        seed[0] += 1
        n = seed[0]
        is_map = f.message_type is not None and f.message_type.GetOptions().map_entry
        if is_map:
            text = f.message_type.fields_by_name["value"].type == FieldDescriptor.TYPE_STRING
            getattr(message, f.name)[f"k{n}"] = f"v{n}" if text else n + 0.5
        elif f.type == FieldDescriptor.TYPE_MESSAGE:
            _fill(getattr(message, f.name).add() if f.is_repeated else getattr(message, f.name), seed)
        elif f.is_repeated:
            getattr(message, f.name).append(f"w{n}" if f.type == FieldDescriptor.TYPE_STRING else n)
        elif f.type == FieldDescriptor.TYPE_BOOL:
            setattr(message, f.name, True)
        elif f.type == FieldDescriptor.TYPE_STRING:
            setattr(message, f.name, f"s{n}")
        elif f.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            setattr(message, f.name, n + 0.25)
        else:
            setattr(message, f.name, n)


def _full_result() -> agent_pb2.ProfileResult:
    result = agent_pb2.ProfileResult()
    _fill(result, [0])
    return result


JOB = Job(id=1, job_key="k|dev|onnxruntime|latbench:0|b1", campaign="c", arch_id="a" * 64, device_key="dev",
          backend="onnxruntime", protocol="latbench", protocol_params={}, batch_size=1, attempts=1,
          lease_owner="w", lease_expires_at_unix_s=None)


def test_every_field_the_agent_reports_is_stored_or_named_as_left_out() -> None:
    """A field added to ProfileResult, PowerReport or LatencyStats fails here until the record decides."""
    result = _full_result()
    row = to_record(JOB, message_dict(result)).to_row(now=1.0)
    for f in agent_pb2.ProfileResult.DESCRIPTOR.fields:
        where = f"ProfileResult.{f.name}"
        if where in NOT_STORED:
            continue
        if f.name == "stats":
            for s in agent_pb2.LatencyStats.DESCRIPTOR.fields:
                assert s.name in STAT_COLUMNS and row[s.name] == pytest.approx(getattr(result.stats, s.name))
        elif f.name == "power":
            for p in agent_pb2.PowerReport.DESCRIPTOR.fields:
                if f"PowerReport.{p.name}" in NOT_STORED:
                    continue
                assert p.name in POWER_COLUMNS, f"PowerReport.{p.name} is neither stored nor in NOT_STORED"
                assert row[POWER_COLUMNS[p.name]] == pytest.approx(getattr(result.power, p.name))
        elif f.name in row:
            assert row[f.name] == pytest.approx(getattr(result, f.name)), f.name
        else:
            assert f"{f.name}_json" in row, f"{where} is neither a column nor in NOT_STORED"
            assert row[f"{f.name}_json"] not in ("{}", "[]", ""), where
    assert set(NOT_STORED) <= {f"ProfileResult.{f.name}" for f in agent_pb2.ProfileResult.DESCRIPTOR.fields} | {
        f"PowerReport.{f.name}" for f in agent_pb2.PowerReport.DESCRIPTOR.fields}


def test_a_record_is_exactly_one_row_of_the_measurements_table_and_back() -> None:
    full = to_record(JOB, message_dict(_full_result()))
    no_power = dataclasses.replace(full, power={"available": False, "source": "rapl",
                                                "unavailable_reason": "no permission"}, stats={})
    for record in (full, no_power):
        row = record.to_row(now=123.0)
        assert list(row) == TABLE
        for column, value in row.items():  # each value has the table's own column type
            assert value is None or isinstance(value, column_type(column)), (column, value)
        back = MeasurementRecord.from_row(row)
        assert back.to_row(now=999.0) == row and back.recorded_at_unix_s == 123.0
        assert dataclasses.replace(back, recorded_at_unix_s=None) == dataclasses.replace(
            record, power=back.power) and back.value("latency_ms") == record.latency_ms
    assert no_power.to_row(0.0)["mean_power_w"] is None and no_power.value("energy_per_inference_mj") is None


def test_the_export_has_every_column_of_the_table_typed_by_it() -> None:
    assert len(COLUMNS) == len(set(COLUMNS))
    assert set(COLUMNS) == set(TABLE) | set(ARCH_COLUMNS)
    assert column_type("power_sampling_period_s") is float and column_type("idle_power_w") is float  # the old bug
    assert column_type("macs") is int and column_type("replayed") is bool and column_type("arch") is str


def test_measured_objectives_name_a_numeric_column_of_the_record() -> None:
    measured = [o for o in OBJECTIVES.values() if o.source == "measured"]
    assert measured
    for objective in measured:
        assert objective.record_field in TABLE and column_type(objective.record_field) is float, objective.name


def test_a_tool_mean_record_leaves_the_statistics_the_tool_did_not_print_empty() -> None:
    result = _full_result()
    result.protocol = "fixed/tool-mean"
    result.stats.p90_ms = result.stats.p99_ms = 0.0  # benchmark_model prints no percentiles
    row = to_record(JOB, message_dict(result)).to_row(now=1.0)
    assert row["p90_ms"] is None and row["p99_ms"] is None and row["mean_ms"] == pytest.approx(result.stats.mean_ms)


def test_the_table_and_the_export_follow_the_one_list_of_record_columns() -> None:
    """RECORD_COLUMNS is the one definition: the table's columns, their nullability, the export's order and what
    an export written before a column existed means all come from it."""
    from hwnas.controller.store.importers import _EXPORT_DEFAULTS
    from hwnas.controller.store.records import RECORD_COLUMNS

    assert [c.name for c in RECORD_COLUMNS] == TABLE
    for column in RECORD_COLUMNS:
        assert schema.measurements.c[column.name].nullable == column.nullable, column.name
        assert column_type(column.name) is column.kind, column.name
    assert COLUMNS[:len(ARCH_COLUMNS)] == ARCH_COLUMNS and COLUMNS[-1] == "job_key"
    assert _EXPORT_DEFAULTS == {"model_format": "onnx", "power_sampling_period_s": None, "idle_power_w": None,
                                "warnings_json": "[]", "load_ms": None, "first_inference_ms": None,
                                "peak_memory_bytes": None, "memory_source": None, "op_profile_json": "[]",
                                "model_bytes": None, "output_check_status": None, "output_max_abs_error": None}
    # a required column added later needs the value older rows take
    assert all(c.before is not None for c in RECORD_COLUMNS if c.since > 1 and not c.nullable)
