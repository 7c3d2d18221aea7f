"""The studio's Schedules page against a real server: viewers see schedules with their next
fire time and last firings; admins make, disable, enable and delete them with CSRF-checked
forms; a schedule's run page says which schedule started it."""

from __future__ import annotations

import time

from studio_helpers import csrf_of


def test_admin_manages_schedules_and_a_viewer_sees_firings(studio):
    admin, viewer = studio.client("admin"), studio.client("viewer")
    page = admin.get("/schedules")
    assert page.status_code == 200 and 'for="schedule-name"' in page.text
    assert 'for="schedule-name"' not in viewer.get("/schedules").text  # no form for viewers
    form = {"name": "every-second", "pipeline": "flow", "cron": "* * * * * *",
            "timezone": "UTC", "parameters": '{"x": 7}', "overlap": "skip"}
    assert admin.post("/schedules", data=form).status_code == 403  # no CSRF token
    bad = admin.post("/schedules", data={**form, "csrf": csrf_of(page.text),
                                         "parameters": '{"x": "seven"}'})
    assert bad.status_code == 422 and "&#39;x&#39;" in bad.text
    made = admin.post("/schedules", data={**form, "csrf": csrf_of(page.text)})
    assert made.status_code == 303, made.text
    runner = studio.client("runner")
    assert runner.post("/schedules/every-second/disable",
                       data={"csrf": csrf_of(runner.get("/schedules").text)}).status_code == 403

    deadline = time.monotonic() + 30
    while 'href="/runs/' not in (listing := viewer.get("/schedules").text):
        assert time.monotonic() < deadline, listing
        time.sleep(0.3)
    assert "every-second" in listing and "Next fire" in listing
    run_id = listing.split('href="/runs/')[1].split('"')[0]
    assert "schedule (every-second)" in viewer.get(f"/runs/{run_id}").text

    csrf = csrf_of(admin.get("/schedules").text)
    assert admin.post("/schedules/every-second/disable", data={"csrf": csrf}).status_code == 303
    assert 'id="switch-every-second">Enable' in admin.get("/schedules").text
    assert admin.post("/schedules/every-second/delete", data={"csrf": csrf}).status_code == 303
    assert "every-second" not in admin.get("/schedules").text
