"""Node process specs: the command line each node is started with."""
import pytest

from iil_robot.cli.graph import NodeSpec, loopback_env


def test_parameters_become_yaml_values_rcl_can_parse():
    cmd = NodeSpec("n", "m", parameters={"empty": "", "text": "sim operator: level 0.7", "number_text": "0.7",
                                         "flag": True, "rate": 20.0, "axes": [1.0, -1.0]}).command("python")
    overrides = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-p"]
    assert overrides == ['empty:=""', 'text:="sim operator: level 0.7"', 'number_text:="0.7"', "flag:=true",
                         "rate:=20.0", "axes:=[1.0,-1.0]"]


def test_loopback_env_keeps_dds_on_this_machine():
    env = loopback_env(7, base={"ROS_STATIC_PEERS": "10.0.0.2", "PATH": "/bin"})
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST" and env["ROS_DOMAIN_ID"] == "7"
    assert "ROS_STATIC_PEERS" not in env
    with pytest.raises(ValueError, match="ROS_DOMAIN_ID=200"):
        loopback_env(200)


def test_a_signal_while_a_process_starts_is_acted_on_once_it_is_registered(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM inside subprocess.Popen used to lose the new process's PID: it outlived the command."""
    import os
    import signal
    import subprocess

    from iil_robot.cli import graph as graph_module
    from iil_robot.cli.graph import Graph

    real_popen = subprocess.Popen

    def popen_then_signalled(*args, **kwargs):
        child = real_popen(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # as if it came before Popen returned
        return child

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        monkeypatch.setattr(graph_module.subprocess, "Popen", popen_then_signalled)
        graph = Graph(loopback_env(97), tmp_path)
        with pytest.raises(KeyboardInterrupt):
            graph.start(NodeSpec("quick", "this"))
        assert "quick" in graph.processes
        assert signal.getsignal(signal.SIGTERM) is interrupt  # the command's own handler is back
        graph.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("argv, env, message", [
    (["sim", "--domain-id", "111"], {}, "ROS_DOMAIN_ID=111 must be in [0, 101] or [215, 232]"),
    (["sim"], {"ROS_DOMAIN_ID": "robot7"}, "'robot7' is not a ROS domain: give a whole number (--domain-id or $ROS_DOMAIN_ID)"),
    (["bench", "latency", "--domain-id", "100"], {}, "ROS_DOMAIN_ID=102 must be in [0, 101] or [215, 232]"),
    (["console", "--domain-id", "300"], {}, "ROS_DOMAIN_ID=300 must be in [0, 232]"),
])
def test_a_bad_domain_is_a_usage_error_naming_it(argv, env, message, monkeypatch, capsys):
    from iil_robot.cli.main import main

    monkeypatch.delenv("ROS_DOMAIN_ID", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as ended:
        main(argv)
    assert ended.value.code == 2
    assert "argument --domain-id: " + message in capsys.readouterr().err


def test_a_command_attaching_to_a_running_graph_takes_any_ros_domain(monkeypatch):
    import argparse

    from iil_robot.cli.graph import add_domain_argument

    monkeypatch.setenv("ROS_DOMAIN_ID", "150")  # a graph someone started there: attach to it, whatever its ports
    attach, start = argparse.ArgumentParser(), argparse.ArgumentParser()
    add_domain_argument(attach, "", starts_graph=False)
    add_domain_argument(start, "", default=42)
    assert attach.parse_args([]).domain_id == 150 and start.parse_args([]).domain_id == 42
    assert attach.parse_args(["--domain-id", "232"]).domain_id == 232
