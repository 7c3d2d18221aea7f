"""Over REST, a cached step names the run that produced its outputs and serves its logs."""

from __future__ import annotations

import pytest

import ductwork as dw

pytestmark = pytest.mark.slow


def test_a_cached_step_names_its_producer_and_serves_its_logs(live_server):
    with dw.Client(live_server.url, token=live_server.tokens["viewer"]) as viewer, \
            dw.Client(live_server.url, token=live_server.tokens["runner"]) as runner:
        first = runner.wait(runner.trigger("flow", {"x": 41}), timeout=120)
        again = runner.wait(runner.trigger("flow", {"x": 41}), timeout=120)
        [made] = [s for s in first["steps"] if s["id"] == "scale"]
        [hit] = [s for s in viewer.run(again["run_id"])["steps"] if s["id"] == "scale"]
        assert made["cached"] is False and made["cached_from"] is None
        assert hit["cached"] is True and hit["cached_from"] == first["run_id"]
        assert "scaling 41" in viewer.logs(again["run_id"], "scale")
