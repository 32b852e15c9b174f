"""Each page run in this process by Streamlit's AppTest (no browser, no server): the elements it
draws over the fixture runs, the pages' branches a browser test cannot reach cheaply (a cluster
that fails, a submit), and an empty runs directory."""
import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.fixture_runs import DONE, LIVE, build


def one_page(runs_dir: str, name: str, cluster: str = "") -> None:
    """The AppTest script: one forge.ui page, with no cluster or a stand-in one."""
    from forge.ui import common, editor, models, monitor, overview, phase

    class StandIn:  # the Cluster protocol (actors/ui_cluster.py is tested on a real Ray)
        dashboard_url = "http://127.0.0.1:9"

        def nodes(self):
            if cluster == "failing":
                raise ConnectionError("connection refused\nmore")
            return [{"node": "head", "ip": "10.0.0.1", "state": "ALIVE", "cpu_percent": 50.0,
                     "cpus": 4, "mem_used": 1, "mem_total": 4, "disk_used": 1, "disk_total": 2,
                     "gpus": []}]

        def submit(self, yaml_text, runs_dir):
            if "reject-me" in yaml_text:
                raise RuntimeError("No available agent to submit job, please try again later.")
            return "raysubmit_test"

    common.SETTINGS = common.Settings(runs_dir, lambda c: StandIn() if cluster else None,
                                      "http://127.0.0.1:9")
    common._find.clear()
    {"overview": overview.page, "phase": phase.page, "models": models.page,
     "system": monitor.page, "config": editor.page}[name]()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return str(build(tmp_path_factory.mktemp("ui-pages") / "runs").storage.local_root)


def run_page(runs_dir, name, cluster="", **query) -> AppTest:
    at = AppTest.from_function(one_page, args=(runs_dir, name, cluster), default_timeout=30)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def texts(at) -> str:
    parts = [e.value for kind in ("title", "header", "subheader", "markdown", "caption", "code")
             for e in getattr(at, kind)]
    parts += [e.value for kind in ("info", "error", "success", "warning") for e in getattr(at, kind)]
    parts += [str(t.value.to_dict()) for t in at.table]
    return "\n".join(map(str, parts))


def test_overview_and_phase_pages(runs):
    at = run_page(runs, "overview")
    assert f"Run {LIVE}: running" in texts(at) and "refreshes every 2 s" in texts(at)
    at = run_page(runs, "overview", run=DONE)
    assert "not_adopted" in texts(at)
    at = run_page(runs, "phase", run=DONE, phase="evomerge")
    body = texts(at)
    assert "adopted" in body and "relative_gain" in body and "evolve/best" in body
    assert len(at.multiselect) == 1 and at.multiselect[0].value == ["evolve/best", "evolve/mean",
                                                                    "evolve/diversity"]
    body = texts(run_page(runs, "phase", run=DONE, phase="quiet_star"))
    assert "Reason: not adopted" in body and "This phase wrote no plots." in body


def test_model_browser_page(runs):
    at = run_page(runs, "models", model=f"{DONE}/evomerge/champion")
    body = texts(at)
    assert f"{DONE}/evomerge/champion" in body and "forge eval" in body and "evomerge:ties" in body
    at.text_input(key="models-text").input("no-such-model").run()
    assert "0 of 5 models" in texts(at)


def test_system_page_with_a_cluster_and_a_failing_one(runs):
    body = texts(run_page(runs, "system", cluster="up"))
    assert "Ray cluster up" in body and "1 node(s), from the Ray state API" in body and "head" in body
    body = texts(run_page(runs, "system", cluster="failing"))
    assert "Ray did not answer (connection refused)" in body and "from psutil on this machine" in body
    assert "No Ray cluster answers (tried http://127.0.0.1:9)" in texts(run_page(runs, "system"))


def test_config_page_validates_and_submits(runs):
    at = run_page(runs, "config", cluster="up")
    assert "valid: phases cognate" in texts(at)
    at.button[0].click().run()
    assert "submitted Ray Job raysubmit_test: http://127.0.0.1:9/#/jobs/raysubmit_test" in texts(at)
    at.text_area[0].input("run: {nmae: x}\n").run()
    assert "error: run.nmae: unknown key; allowed keys: device, name, runs_dir, seed" in texts(at)
    assert at.button[0].disabled
    at.text_area[0].input("run: {name: reject-me}\n").run()
    at.button[0].click().run()
    assert "submit failed: No available agent to submit job" in texts(at)


def test_pages_over_an_empty_runs_directory(tmp_path):
    for name in ("overview", "phase", "models"):
        assert f"Nothing to show: no runs in {tmp_path} yet (no registry.db)" in texts(run_page(str(tmp_path), name))
    assert "No Ray cluster is up" in texts(run_page(str(tmp_path), "config"))


def whole_app(runs_dir: str) -> None:
    """The AppTest script: forge.ui.app.main as actors/ui_app.py calls it (no cluster)."""
    from forge.ui.app import main

    main(["--runs-dir", runs_dir, "--ray-dashboard", "http://127.0.0.1:9"], lambda candidates: None)


def test_the_app_opens_on_the_overview(runs):
    at = AppTest.from_function(whole_app, args=(runs,), default_timeout=30)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Pipeline overview" and f"Run {LIVE}: running" in texts(at)
