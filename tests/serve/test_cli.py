"""`forge serve` options: every bad one is exit 2 with one line, before Ray is touched."""
from __future__ import annotations

import pytest

from forge.cli import main
from forge.serve.cli import serve_options, serve_parser


def _options(tiny_run, *extra):
    return serve_options(serve_parser().parse_args([str(tiny_run / "cognate/fp"), *extra]))


def test_defaults_are_loopback_port_8000_one_replica(tiny_run):
    o = _options(tiny_run)
    assert (o.host, o.port, o.replicas, o.num_cpus, o.num_gpus) == ("127.0.0.1", 8000, 1, 1.0, 0.0)
    assert o.source.tokenizer == tiny_run / "tokenizer.json" and o.source.name == "fp"


def test_fractional_gpus_and_autoscaling_bounds_reach_the_deployment(tiny_run):
    pytest.importorskip("ray.serve")
    from actors.serve import deployment_options

    o = _options(tiny_run, "--num-gpus", "0.25", "--num-cpus", "0.5", "--min-replicas", "1",
                 "--max-replicas", "4", "--max-ongoing-requests", "6")
    d = deployment_options(o)
    assert d["ray_actor_options"] == {"num_cpus": 0.5, "num_gpus": 0.25}
    assert d["autoscaling_config"]["min_replicas"] == 1 and d["autoscaling_config"]["max_replicas"] == 4
    assert d["autoscaling_config"]["target_ongoing_requests"] == 3 and "num_replicas" not in d
    fixed = deployment_options(_options(tiny_run, "--replicas", "3"))
    assert fixed["num_replicas"] == 3 and fixed["ray_actor_options"] == {"num_cpus": 1.0}


BAD = [(["--port", "0"], "--port"), (["--replicas", "0"], "--replicas"),
       (["--num-cpus", "-1"], "--num-cpus"), (["--num-gpus", "nan"], "--num-gpus"),
       (["--min-replicas", "2"], "give both"), (["--min-replicas", "3", "--max-replicas", "2"],
                                                "0 <= min <= max"),
       (["--max-ongoing-requests", "0"], "--max-ongoing-requests")]


@pytest.mark.parametrize("extra,message", BAD)
def test_bad_options_exit_2_with_one_line_and_no_ray(tiny_run, capsys, extra, message):
    assert main(["serve", str(tiny_run / "cognate/fp"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_model_and_broken_artifact_exit_2(tiny_run, tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope")]) == 2
    assert "neither a model folder" in capsys.readouterr().err
    broken = tmp_path / "run" / "m"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{}")
    (tmp_path / "run" / "tokenizer.json").write_text((tiny_run / "tokenizer.json").read_text())
    assert main(["serve", str(broken)]) == 2
    assert "cannot load" in capsys.readouterr().err


def test_a_registered_id_resolves_through_the_registry(tmp_path):
    from forge.registry import RegistryStore
    from forge.serve.source import resolve_model
    from tests.serve.conftest import make_run

    runs = make_run(tmp_path / "runs").parent
    store = RegistryStore(runs / "registry.db")
    store.create_run("r1", "t", "{}")
    store.register_model("r1/cognate/fp", "r1", "cognate", "fp", "r1/cognate/fp", "0" * 64, 1, 1, {})
    store.register_model("r1/bitnet/ternary", "r1", "bitnet", "ternary", "r1/bitnet/ternary",
                         "0" * 64, 1, 1, {}, parents=[("r1/cognate/fp", "bitnet")])
    store.close()
    src = resolve_model("r1/bitnet/ternary", str(runs))
    assert src.path == runs / "r1/bitnet/ternary" and src.name == "r1/bitnet/ternary"
    assert src.lineage["parents"][0]["id"] == "r1/cognate/fp"
    by_folder = resolve_model(str(runs / "r1/bitnet/ternary"))
    assert by_folder.model_id == "r1/bitnet/ternary"
