"""Schemathesis against our own /openapi.json, on both backends: every operation, with generated
valid and invalid input, then chains of calls along the document's links. No answer may be a 5xx,
nor contradict the document (status, content type, headers, body schema), and a method the
document does not list gets a 405 with an Allow header.

The run is bounded (few examples an operation) and derandomized, so that it takes the same
path every time. Whether the server accepts exactly the inputs the schemas accept is not
checked: the document cannot say which contacts exist or which e-mails are well formed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import Server
from rdevents.openapi import build_openapi
from rdevents.tokens import issue_api_key
from receiver import Receiver

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance,unsupported_method,"
          "allow_header_conformance,missing_required_header,ignored_auth,use_after_free,"
          "ensure_resource_availability")
CONFIG = """\
headers = { Authorization = "Bearer ${RDEVENTS_TEST_TOKEN}" }
[parameters]
"query.api_key" = "${RDEVENTS_TEST_API_KEY}"
"body.url" = "${RDEVENTS_TEST_RECEIVER}"
# The feed's long polling would hold each example up to its `wait`.
"query.wait" = 0

# The coverage phase walks every boundary of every schema; on the catalogue's event schemas that
# takes half a minute, and test_fuzz.py covers those routes.
[[operations]]
include-path-regex = "^/platform/(events|conversions)"
phases.coverage.enabled = false

# Chains of calls along the links (create, then read, change, delete what was created).
[phases.stateful.generation]
max-examples = 30
"""


def test_no_answer_contradicts_the_openapi_document(server: Server, tmp_path: Path):
    account_id, token = server.new_account()
    api_key = server.call(issue_api_key(server.store, account_id))
    receiver = Receiver().start()  # subscribed webhooks must answer their validation request
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
             f"{server.url}/openapi.json", "--checks", CHECKS, "--max-examples", "4",
             "--generation-deterministic", "--seed", "1", "--workers", "1", "--no-shrink",
             "--report-dir", str(tmp_path / "report")],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
            env={**os.environ, "RDEVENTS_TEST_TOKEN": token, "RDEVENTS_TEST_API_KEY": api_key,
                 "RDEVENTS_TEST_RECEIVER": receiver.url, "NO_COLOR": "1"})
    finally:
        receiver.stop()
    assert run.returncode == 0, run.stdout[-6_000:] + run.stderr[-2_000:]
    operations = sum(len(item) for item in build_openapi()["paths"].values())
    assert f"Tested: {operations}" in run.stdout, run.stdout[-3_000:]
