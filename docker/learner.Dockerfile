# GPU learner: the `learner` node on a CUDA machine, in the robot's ROS domain.
# Build from the repository root:  docker build -f docker/learner.Dockerfile -t iil-robot/learner .
# Run with the NVIDIA container toolkit (`--gpus all`). Not built on the machines this
# project is developed on (they run no Docker engine).
FROM python:3.11-slim-bookworm

RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/iil_robot
COPY . .
# The same set-up as the README's "Getting started": ./iil makes .venv with the pinned versions and the ROS 2
# Jazzy pip wheels. On a machine with a CUDA driver, torch==2.13.0 from PyPI is the CUDA build.
RUN ./iil --help

# Two machines: discovery beyond localhost, same ROS_DOMAIN_ID as the robot.
ENV ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET
ENTRYPOINT ["/opt/iil_robot/.venv/bin/learner"]
CMD ["--ros-args", "--params-file", "/opt/iil_robot/iil_robot/config/learner.yaml", "-p", "device:=cuda"]
