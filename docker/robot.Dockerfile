# Robot PC: ROS 2 Jazzy with the SpaceMouse gate, mux, policy, recorder (and the learner on CPU).
# Build from the repository root:  docker build -f docker/robot.Dockerfile -t iil-robot/robot .
# Not built on the machines this project is developed on (they run no Docker engine).
FROM ros:jazzy-ros-base

RUN apt-get update && apt-get install -y --no-install-recommends \
        python3-venv python3-pip libhidapi-hidraw0 libegl1 libgl1 git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/iil_robot
COPY . .
# The same set-up as the README's "Getting started": ./iil makes .venv with the pinned versions; with the
# sourced system ROS 2 Jazzy it uses that ROS instead of the pip wheels.
RUN bash -c "source /opt/ros/jazzy/setup.bash && ./iil --help"
RUN bash -c "source /opt/ros/jazzy/setup.bash && cd ros2_ws && colcon build --symlink-install"

ENV ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
ENTRYPOINT ["bash", "-c", "source /opt/ros/jazzy/setup.bash && source /opt/iil_robot/ros2_ws/install/setup.bash && exec \"$@\"", "--"]
CMD ["ros2", "launch", "iil_robot", "intervention.launch.py", "learner:=false"]
