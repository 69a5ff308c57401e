"""Host compute: confined to its work folder, with timeouts and output caps enforced."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from agentjournal.application.ports import ComputeError
from agentjournal.application.tools import ToolLimits, run_tool
from agentjournal.domain import ToolCall
from agentjournal.infrastructure.host import HostCompute


@pytest.fixture
def compute(tmp_path: Path) -> HostCompute:
    host = HostCompute(base=tmp_path, max_output_bytes=10_000)
    binding = host.attach(uuid.uuid4(), None)
    assert Path(binding.reference).is_dir()
    return host


def test_files_round_trip_exactly_whatever_their_names_and_bytes(compute):
    name = 'we\'ird "name" $(touch pwned)\nline.bin'
    data = bytes(range(256)) * 3
    compute.write_file(f"sub/{name}", data)
    assert compute.read_file(f"sub/{name}") == data
    assert not (compute.root / "pwned").exists()
    listed = compute.list_files(".")
    assert [(e.path, e.size) for e in listed] == [(f"sub/{name}", len(data))]


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "sub/../../outside"])
def test_paths_outside_the_work_folder_are_refused(compute, path):
    with pytest.raises(ComputeError, match="outside the work folder"):
        compute.read_file(path)
    with pytest.raises(ComputeError, match="outside the work folder"):
        compute.write_file(path, b"x")


def test_symlinks_out_of_the_work_folder_are_refused(compute, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, compute.root / "link")
    with pytest.raises(ComputeError, match="outside the work folder"):
        compute.read_file("link")


def test_a_command_past_its_timeout_is_killed_with_its_children(compute):
    started = time.monotonic()
    result = compute.execute("sleep 600 & sleep 600; echo never", timeout=1)
    assert time.monotonic() - started < 10
    assert result.timed_out and result.exit_code != 0
    assert "never" not in result.output


def test_output_is_capped_and_the_cut_recorded(compute):
    result = compute.execute("head -c 50000000 /dev/zero | tr '\\0' x", timeout=60)
    assert result.exit_code == 0
    assert result.truncated
    assert len(result.output) == 10_000


def test_tool_errors_become_results_the_model_can_read(compute):
    limits = ToolLimits(timeout=5)
    bad_json = run_tool(compute, ToolCall("1", "read_file", "{not json"), limits)
    assert bad_json.is_error and "not valid JSON" in bad_json.output
    missing = run_tool(compute, ToolCall("2", "read_file", '{"path": "nope.txt"}'), limits)
    assert missing.is_error and "no file 'nope.txt'" in missing.output
    failing = run_tool(compute, ToolCall("3", "execute_command", '{"command": "exit 3"}'), limits)
    assert failing.is_error and failing.exit_code == 3
    unknown = run_tool(compute, ToolCall("4", "format_disk", "{}"), limits)
    assert unknown.is_error and "unknown tool" in unknown.output


def test_invalid_utf8_output_is_kept_readable(compute):
    result = compute.execute("printf 'ok \\377\\376 end'", timeout=5)
    assert result.output == "ok \ufffd\ufffd end"


def test_the_model_cannot_ask_for_more_time_than_allowed(compute):
    limits = ToolLimits(timeout=5, max_timeout=1)
    result = run_tool(
        compute, ToolCall("1", "execute_command", '{"command": "sleep 30", "timeout": 999}'), limits
    )
    assert result.is_error and "[killed after 1 s]" in result.output


def test_package_names_cannot_smuggle_options(compute):
    with pytest.raises(ComputeError, match="not a package name"):
        compute.install_packages("pip", ["--index-url=http://example.invalid/simple", "six"])
    with pytest.raises(ComputeError, match="pip packages only"):
        compute.install_packages("apt", ["curl"])


def test_a_fixed_work_folder_is_used_as_given(tmp_path):
    host = HostCompute(tmp_path / "work")
    binding = host.attach(uuid.uuid4(), None)
    assert binding.reference == str((tmp_path / "work").resolve())
    assert host.execute("pwd", timeout=5).output.strip() == binding.reference
