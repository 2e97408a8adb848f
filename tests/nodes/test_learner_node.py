"""The learner node in its own process: records in, weights out, checkpoint, resume."""
from std_msgs.msg import String, UInt8MultiArray

from iil_robot.graph import NodeSpec
from iil_robot.learners.weights import Expected, decode_policy
from iil_robot.nodes.common import LATCHED_QOS, RECORD_QOS

from tests.learners.helpers import boundary_task_records


def spec(run_dir):
    return NodeSpec("learner", "iil_robot.nodes.learner", parameters={
        "observation_spec": "toy/v1", "min_transitions": 50, "run_dir": str(run_dir), "device": "cpu",
        "publish_every_updates": 20, "rlpd.hidden": [16, 16], "rlpd.num_qs": 3, "rlpd.batch_size": 32,
    })


def test_learner_node_trains_from_step_records_publishes_weights_and_resumes(graph, probe, tmp_path):
    graph.start(spec(tmp_path / "run"))
    received = probe.collect(UInt8MultiArray, "policy/weights", LATCHED_QOS)
    steps = probe.publisher(String, "step", RECORD_QOS)
    probe.wait_for(lambda: steps.get_subscription_count() > 0, 30.0, "the learner's step subscription")
    for episode in boundary_task_records(3, 40):
        for record in episode:
            steps.publish(String(data=record.encode()))
    probe.wait_for(lambda: len(received) >= 2, 60.0, "two weights messages")
    meta, _ = decode_policy(received.messages[-1].data.tobytes(), Expected("toy/v1", 1))
    assert meta.algorithm == "rlpd" and meta.policy_version == 2 and meta.updates >= 20

    assert graph.stop("learner")["learner"] == 0
    assert (tmp_path / "run" / "checkpoint.safetensors").exists() and (tmp_path / "run" / "tensorboard").is_dir()
    count = len(received)
    graph.start(spec(tmp_path / "run"))
    probe.wait_for(lambda: len(received) > count, 60.0, "weights from the resumed learner")
    resumed, _ = decode_policy(received.messages[count].data.tobytes())
    assert resumed.policy_version > meta.policy_version and resumed.updates >= meta.updates
    assert "resumed from" in graph.tail("learner", 50)
