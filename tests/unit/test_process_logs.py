"""Process logs: one JSON object per line, carrying the request id; or text."""

from __future__ import annotations

import logging
import logging.config

import orjson
import pytest

from muster.process_logs import logging_config, request_id_var


def _configure(log_format: str) -> None:
    logging.config.dictConfig(logging_config(log_format, "INFO"))


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_request_id_and_the_extras(capsys: pytest.CaptureFixture[str]) -> None:
    _configure("json")
    token = request_id_var.set("req-42")
    try:
        logging.getLogger("muster.test").warning("seats low: %d left", 3, extra={"tenant": "t1"})
    finally:
        request_id_var.reset(token)
    logging.getLogger("muster.test").info("outside a request")

    first, second = (orjson.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["message"] == "seats low: 3 left"
    assert (first["level"], first["logger"], first["request_id"]) == (
        "WARNING",
        "muster.test",
        "req-42",
    )
    assert first["tenant"] == "t1" and first["time"].endswith("+00:00")
    assert "request_id" not in second


def test_a_json_line_holds_the_traceback_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    _configure("json")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("muster.test").exception("it failed")

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    line = orjson.loads(lines[0])
    assert "RuntimeError: boom" in line["exception"] and line["level"] == "ERROR"


def test_the_text_format_shows_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    _configure("text")
    token = request_id_var.set("req-7")
    try:
        logging.getLogger("muster.test").warning("hello")
    finally:
        request_id_var.reset(token)

    assert capsys.readouterr().err.rstrip().endswith("WARNING muster.test [req-7] hello")
