"""Read another node's parameters once, through its GetParameters service (``iil-robot doctor --servo``)."""
from __future__ import annotations

from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import GetParameters
from rclpy.executors import SingleThreadedExecutor

VALUE_FIELDS = {ParameterType.PARAMETER_BOOL: "bool_value", ParameterType.PARAMETER_INTEGER: "integer_value",
                ParameterType.PARAMETER_DOUBLE: "double_value", ParameterType.PARAMETER_STRING: "string_value"}


def read_parameters(node: str, names: tuple[str, ...], timeout: float = 5.0) -> dict[str, Any] | None:
    """``names`` of the running ``node``; None when it does not answer within ``timeout`` s. Unset parameters (and
    array ones) are left out."""
    context = rclpy.Context()
    rclpy.init(context=context)
    probe = rclpy.create_node("iil_robot_doctor", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(probe)
    try:
        client = probe.create_client(GetParameters, "/" + node.strip("/") + "/get_parameters")
        if not client.wait_for_service(timeout_sec=timeout):
            return None
        future = client.call_async(GetParameters.Request(names=list(names)))
        executor.spin_until_future_complete(future, timeout_sec=timeout)
        if not future.done():
            return None
        return {name: getattr(value, VALUE_FIELDS[value.type]) for name, value in zip(names, future.result().values)
                if value.type in VALUE_FIELDS}
    finally:
        executor.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown(context=context)
