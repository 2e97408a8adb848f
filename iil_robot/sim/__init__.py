"""Hardware-free stand-ins: Fetch tasks and a simulated operator, as a plain Python API.

The ROS nodes ``sim_arm`` and ``sim_operator`` wrap exactly this code. Modules:

- `tasks`        `FetchTaskEnv`: Reach / Push / PickAndPlace behind EE-velocity + gripper commands
- `spec`         `TaskSpec` and the named slices of the observation vector
- `state`        `TaskState`: the positions the expert and the value reason about
- `camera`       offscreen images (MUJOCO_GL=egl)
- `expert`       the scripted optimum per task
- `progress`     the task-progress value (reference Q of the value-based model)
- `skill`        suboptimality knobs and the quality level → knobs mapping
- `perception`   what the operator sees: delayed, with misjudged positions
- `intervention` RLIF's random and value-based intervention models
- `operator`     `SimOperator`: watches a policy, steps in, hands back
- `rollout`      episodes of policy + operator; success rates
- `calibrate`    re-measures the level → knobs mapping

Nothing here imports rclpy; only `tasks`, `camera`, `rollout` and `calibrate` import MuJoCo
(the operator runs from the observation vector alone, given a `TaskSpec`).
"""
