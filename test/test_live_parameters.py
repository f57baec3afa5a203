"""Parameters changed while the nodes run, through the parameter services (`ros2 param set`, rqt_reconfigure).

Each change must show on the topics within APPLY_BOUND_S; a rejected value must say why and change nothing.
"""

from geometry_msgs.msg import Vector3Stamped
from helpers import NodeProcess, RemoteParameters, frame_msg, publish_until, publish_until_seen
from sensor_msgs.msg import Image

from cam_guard.ros.transport import image_qos

APPLY_BOUND_S = 3.0


def test_reward_threshold_and_colour_rule_change_live_and_bad_values_change_nothing(probe):
    pub = probe.node.create_publisher(Image, "/image_raw", image_qos("reliable"))
    stamped = probe.subscribe(Vector3Stamped, "/reward/stamped")
    block_right = lambda: frame_msg(60)  # noqa: E731  (the synthetic block in the right half)
    with NodeProcess("cam_guard.reward_node", {"threshold": 0.5}) as node:
        publish_until(pub, block_right, stamped, 3)
        assert stamped.messages[-1].vector.x == 1.0 and stamped.messages[-1].vector.y == 0.5
        params = RemoteParameters(probe, "/reward")

        [result] = params.set(threshold=0.7)
        assert result.successful, result.reason
        publish_until_seen(pub, block_right, stamped, lambda ms: ms[-1].vector.y == 0.7, APPLY_BOUND_S,
                           "reward/stamped carrying the new threshold")

        rejected = params.set(threshold=2.0, backend="onnx", crops=["1,2"], color__hsv_low=[1, 2])
        assert [r.successful for r in rejected] == [False] * 4
        assert "out of range" in rejected[0].reason
        assert "read-only" in rejected[1].reason
        assert "top,left,height,width" in rejected[2].reason
        assert "three values" in rejected[3].reason
        assert params.get("threshold", "backend") == [0.7, "color"]

        [result] = params.set(color__roi=[0.0, 0.0, 0.5, 1.0])  # look at the left half instead
        assert result.successful, result.reason
        publish_until_seen(pub, block_right, stamped, lambda ms: ms[-1].vector.x == 0.0, APPLY_BOUND_S,
                           "probability 0 once the rule looks where the block is not")
        assert stamped.messages[-1].vector.y == 0.7
        code, _ = node.stop()
        output = node.output()
    assert code == 0
    assert "set threshold = 0.7" in output
