"""`forge ui` arguments: bad ones fail in one line with exit 2, before Streamlit starts."""
import socket

import pytest

from forge.cli import main
from forge.ui.launch import is_loopback, streamlit_command
from tests.ui.browser import free_port


@pytest.mark.parametrize("argv, message", [
    (["--runs-dir", "{missing}"], "--runs-dir {missing}: no such directory"),
    (["--port", "0"], "--port 0: allowed: 1-65535"),
    (["--port", "70000"], "--port 70000: allowed: 1-65535"),
    (["--host", "no-such-host.invalid"], "--host no-such-host.invalid: not an address of this machine"),
    (["--host", "192.0.2.123"], "--port 8501: cannot listen on 192.0.2.123"),
    (["--port", "{free}", "--ray-dashboard", "127.0.0.1:8265"],
     "--ray-dashboard 127.0.0.1:8265: expected an http(s):// URL"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv, message):
    missing = str(tmp_path / "nope")
    argv = [a.format(missing=missing, free=free_port()) for a in argv]
    runs = [] if "--runs-dir" in argv else ["--runs-dir", str(tmp_path)]
    assert main(["ui", *runs, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: " + message.format(missing=missing)) and "\n" not in err


def test_a_busy_port_is_refused(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["ui", "--runs-dir", str(tmp_path), "--port", str(port)]) == 2
    assert f"--port {port}: cannot listen on 127.0.0.1" in capsys.readouterr().err


def test_a_bad_runs_uri_is_refused(capsys):
    assert main(["ui", "--runs-dir", "nosuchscheme://key:secret@bucket/runs"]) == 2
    err = capsys.readouterr().err
    assert "--runs-dir nosuchscheme://key:***@bucket/runs" in err and "secret" not in err


def test_streamlit_runs_headless_on_loopback_without_usage_stats(tmp_path):
    cmd = streamlit_command(str(tmp_path), "127.0.0.1", 8502)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("actors/ui_app.py")
    assert {"--server.headless=true", "--browser.gatherUsageStats=false",
            "--server.address=127.0.0.1", "--server.port=8502"} <= set(cmd)
    assert cmd[-3:] == ["--", "--runs-dir", str(tmp_path)]
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
