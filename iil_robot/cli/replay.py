"""``iil-robot replay BAG_OR_DIR...``: summarise, plot, label and export, repair, or play recorded bags.

The command over :mod:`iil_robot.data.recordings` (reading, splitting and labelling bags, the
code the live learner runs). ``--train METHOD`` trains that method's learner on the labelled
episodes (:mod:`iil_robot.learners.offline`), writing weights the policy node loads and a
checkpoint the learner node resumes from.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from iil_robot.data.actions import ACTION_FRAMES, ACTION_SPACES, DEFAULT_ACTION_SPACE, ActionConfig
from iil_robot.data.bags import BagError, find_bags, repair_bag, unlisted_files
from iil_robot.data.episodes import Episode
from iil_robot.data.frames import camera_names, compressed_topic
from iil_robot.data.labels import LabelConfig, label_episodes
from iil_robot.data.recordings import Recording, export_dataset, load_recording, summarise
from iil_robot.data.tool_frame import orientation_indices
from iil_robot.learners.methods import METHODS


def print_summary(summary: dict) -> None:
    t = summary["totals"]
    print(f"{len(summary['bags'])} bag(s), {t['episodes']} episodes, {t['steps']} steps, "
          f"{t['duration']:.1f} s; outcomes {t['outcomes']}; {t['interventions']} interventions "
          f"({t['interventions_per_episode']:.2f}/episode, {100 * t['intervention_rate']:.1f} % of steps); "
          f"policy versions {t['policy_versions']}")
    if t["ticks_before_first_record"] or t["ticks_missing_between_records"]:
        print(f"  not recorded: {t['ticks_before_first_record']} mux ticks before the first record (published before the "
              f"recorder subscribed), {t['ticks_missing_between_records']} missing between records "
              f"({t['lost_ticks']} inside episodes)")
    for e in summary["episodes"]:
        print(f"  episode {e['index']:3d}  {e['outcome']:10s} {e['duration']:7.2f} s  {e['steps']:5d} steps  "
              f"{e['interventions']:2d} interventions ({100 * e['intervention_rate']:5.1f} %)  versions {e['policy_versions']}")


# -- plots -----------------------------------------------------------------------------------


def plot_episode(episode: Episode, path: Path) -> None:
    """Timeline PNG: commanded translation and gripper, who was in control, intervention onsets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = episode.steps
    t = np.array([s.stamp - episode.start for s in steps])
    executed = np.array([s.executed_action for s in steps])
    fig, (ax_v, ax_g, ax_c) = plt.subplots(3, 1, sharex=True, figsize=(10, 6), height_ratios=[3, 1, 1])
    for i, name in enumerate(("vx", "vy", "vz")):
        ax_v.plot(t, executed[:, i], label=name)
    ax_v.set_ylabel("executed (m/s)")
    ax_v.legend(loc="upper right", fontsize="small")
    ax_g.plot(t, executed[:, 6], color="k")
    ax_g.set_ylabel("gripper")
    control = {"policy": 0, "human": 1, "hold": 2}
    ax_c.step(t, [control[s.source] for s in steps], where="post", color="tab:purple")
    ax_c.set_yticks([0, 1, 2], ["policy", "human", "hold"])
    ax_c.set_xlabel("time since episode start (s)")
    for s in steps:
        if s.onset:
            for ax in (ax_v, ax_g, ax_c):
                ax.axvline(s.stamp - episode.start, color="tab:red", linestyle="--", linewidth=1)
    human = np.array([s.source == "human" for s in steps])
    ax_v.fill_between(t, 0, 1, where=human, step="post", color="tab:orange", alpha=0.2,
                      transform=ax_v.get_xaxis_transform(), label="operator")
    ax_v.set_title(f"episode {episode.index}: {episode.outcome}, {sum(s.onset for s in steps)} interventions "
                   "(shaded: operator in control; dashed: onsets)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# -- command ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="BAG_OR_DIR", help="bag directories, or directories holding bags")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--plots", metavar="DIR", help="write a timeline PNG per episode into DIR")
    parser.add_argument("--video", metavar="DIR", help="write an MP4 per episode into DIR: the recorded camera frames with "
                        "the command, who was in control and intervention onsets drawn over them")
    parser.add_argument("--video-topic", default="/camera/front/image_raw/compressed",
                        help="--video: CompressedImage (or rgb8 Image) topic in the bags (default %(default)s)")
    parser.add_argument("--export", metavar="FILE", help="write the labelled dataset (FILE.npz + FILE.json)")
    parser.add_argument("--window", type=int, default=LabelConfig().pre_intervention_window,
                        help="pre-intervention window in steps (default %(default)s)")
    parser.add_argument("--outcomes", nargs="+", metavar="OUTCOME", help="export only episodes with these outcomes")
    parser.add_argument("--repair", action="store_true",
                        help="first make bags left by a crash whole (recover unterminated files, rewrite metadata.yaml)")
    parser.add_argument("--play", action="store_true", help="republish the bags with their original timing and /clock")
    parser.add_argument("--rate", type=float, default=1.0, help="--play speed factor (default 1.0)")
    parser.add_argument("--delay", type=float, default=1.0,
                        help="--play: seconds for discovery before the first message (default 1.0)")
    parser.add_argument("--train", choices=list(METHODS), metavar="METHOD",
                        help="train this method's learner on the labelled data: " + "; ".join(
                            f"{m.name}: {m.summary}" for m in METHODS.values()))
    parser.add_argument("--head", choices=("l2", "mixture"), default="l2",
                        help="--train, supervised learners: action head (default %(default)s)")
    parser.add_argument("--action-space", default=DEFAULT_ACTION_SPACE, choices=list(ACTION_SPACES),
                        help="--train: the action space to learn, each with the gripper (default %(default)s), bounded by "
                             "the mux's default limits")
    parser.add_argument("--action-frame", default="base", choices=list(ACTION_FRAMES),
                        help="--train: the frame of the learned velocities: base (the command frame, default) or tool (the "
                             "end effector's; the observations must hold its orientation, ee_orientation)")
    parser.add_argument("--updates", type=int, default=1000, help="--train: learner updates (default %(default)s)")
    parser.add_argument("--out", metavar="DIR", help="--train: output directory for weights.safetensors and the "
                        "checkpoint (default runs/replay_<learner>; must not hold a checkpoint)")
    parser.add_argument("--observation-spec", default="unknown/v1",
                        help="--train: observation layout the weights declare; must match the policy node's "
                             "(default %(default)s)")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("WIDTH", "HEIGHT"),
                        help="--train rlif|hgdagger (and its variants): a camera policy on the recorded frames at this size, "
                             "paired with the steps by their image_stamps")
    parser.add_argument("--cameras", type=camera_list, default="front", metavar="NAME[,NAME...]",
                        help="--image-size: the cameras learned from, comma-separated, each camera/<name>/image_raw/compressed "
                             "in the bags; a step is learned from only with every camera's frame, and the images are stacked "
                             "in this order (default %(default)s)")
    parser.add_argument("--device", default="auto", help="--train: auto (CUDA when available), cpu or cuda[:N]")
    parser.add_argument("--seed", type=int, default=0, help="--train: seed (default %(default)s)")


def camera_list(text: str) -> tuple[str, ...]:
    """``--cameras``: comma-separated camera names (as the nodes' ``cameras`` parameters)."""
    try:
        names = camera_names(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    if not names:
        raise argparse.ArgumentTypeError("name at least one camera, e.g. front or front,wrist")
    return names


def run(args: argparse.Namespace) -> int:
    try:
        if args.repair:
            for bag in find_bags(args.paths):
                report = repair_bag(bag)
                print(f"[replay] repaired {bag}: recovered {report.recovered_messages} messages from "
                      f"{list(report.recovered_files)}, dropped {list(report.dropped_files)}", file=sys.stderr)
        for bag in find_bags(args.paths):
            if unlisted_files(bag):
                print(f"[replay] {bag} holds files metadata.yaml does not list (a crash?): "
                      f"run with --repair to recover them", file=sys.stderr)
        if args.play:
            from iil_robot.nodes.player import play

            return play(find_bags(args.paths), rate=args.rate, delay=args.delay)
        cameras = args.cameras if args.train and getattr(args, "image_size", None) else ()
        recording = load_recording(args.paths, cameras=cameras)
    except BagError as err:
        print(f"[replay] {err}", file=sys.stderr)
        return 1
    summary = summarise(recording)
    if args.plots:
        out = Path(args.plots)
        out.mkdir(parents=True, exist_ok=True)
        for episode in recording.episodes:
            plot_episode(episode, out / f"episode_{episode.index:03d}.png")
        summary["plots"] = str(out)
    if args.video:
        from iil_robot.data.video import write_videos  # opencv, only when asked

        summary["video"] = write_videos(recording.episodes, recording.bags, Path(args.video), args.video_topic)
        if not summary["video"]["videos"]:
            print(f"[replay] --video: no frames on {args.video_topic} within any episode (is the camera node recorded?)",
                  file=sys.stderr)
    if args.export:
        config = LabelConfig(pre_intervention_window=args.window)
        episodes = [e for e in recording.episodes if not args.outcomes or e.outcome in args.outcomes]
        labelled = label_episodes(episodes, config)
        npz, sidecar = export_dataset(labelled, Path(args.export), {
            "bags": summary["bags"], "label_config": asdict(config),
            "episodes": [e.index for e in episodes], "operator": recording.operator, "task": recording.task,
        })
        summary["export"] = {"arrays": str(npz), "sidecar": str(sidecar), "rlif": len(labelled.rlif),
                             "dagger": len(labelled.dagger), "label_stats": labelled.stats.to_dict()}
    if args.train:
        try:
            summary["train"] = train(recording, args)
        except (ValueError, RuntimeError) as err:  # OfflineTrainingError, LabelError, a bad --device
            print(f"[replay] --train {args.train}: {err}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(summary))
    else:
        print_summary(summary)
        if args.video:
            v = summary["video"]
            print(f"wrote {len(v['videos'])} episode videos ({sum(v['videos'].values())} frames) to {v['dir']}")
        if args.export:
            e = summary["export"]
            print(f"exported {e['rlif']} RLIF transitions and {e['dagger']} HG-DAgger samples to {e['arrays']}")
        if args.train:
            t = summary["train"]
            print(f"trained {args.train} for {t['updates']} updates in {t['seconds']:.1f} s on {t['prior']} prior + "
                  f"{t['online']} online transitions: {t['weights']} (policy node: fallback: weights), {t['checkpoint']}")
    return 0


def train(recording: Recording, args: argparse.Namespace) -> dict:
    """``--train``: label the episodes (``--window``, ``--outcomes``) and train the method's learner on them."""
    from iil_robot.learners.configs import LearnerConfigs
    from iil_robot.learners.offline import train_offline
    from iil_robot.learners.trainer import TrainerConfig

    method = METHODS[args.train]
    action = ActionConfig(getattr(args, "action_space", DEFAULT_ACTION_SPACE), frame=getattr(args, "action_frame", "base"))
    orientation = orientation_indices(recording.observation_fields, action.orientation_field) if action.frame == "tool" else ()
    labels = LabelConfig(pre_intervention_window=args.window, label_every_step=method.label_every_step,
                         action_space=action.space, action_frame=action.frame, orientation=orientation)
    episodes = [e for e in recording.episodes if not args.outcomes or e.outcome in args.outcomes]
    width, height = getattr(args, "image_size", None) or (0, 0)
    config = TrainerConfig(method=args.train, observation_spec=args.observation_spec, device=args.device,
                           seed=args.seed, run_dir=args.out or f"runs/replay_{args.train}", image_width=width,
                           image_height=height, cameras=",".join(args.cameras),
                           size="gpu")  # offline, no arm to keep up with: the configs' own sizes
    unrecorded = [compressed_topic(c) for c in config.camera_names if c not in {camera for camera, _, _ in recording.frames}]
    if unrecorded:
        raise ValueError(f"--image-size: no camera frames on {', '.join(unrecorded)} in the bags (was the camera recorded? "
                         "the recorder's topics.* name what it records)")
    base = LearnerConfigs().seeded(args.seed)
    configs = LearnerConfigs(**{**base.as_dict(), "hgdagger": replace(base.hgdagger, head=args.head)})
    labelled = label_episodes(episodes, labels)
    if method.label_every_step and labelled.stats.unlabelled:
        print(f"[replay] --train {args.train}: {labelled.stats.unlabelled} visited steps carry no operator command and are "
              "not learned from", file=sys.stderr)
    result = train_offline(labelled, config, args.updates, configs, labels, frames=recording.frames,
                           observation_fields=recording.observation_fields, action=action)
    if result.missing_frames:
        lacking = ", ".join(f"{rows} {camera}'s" for camera, rows in result.missing_by_camera.items() if rows)
        print(f"[replay] --train: {result.missing_frames} labelled rows have no camera frame with their image_stamps in the "
              f"bags (rows lacking {lacking}): left out of image learning", file=sys.stderr)
    return {"method": args.train, "algorithm": config.algorithm, "updates": result.updates, "seconds": result.seconds,
            "prior": result.prior, "online": result.online, "weights": str(result.weights),
            "checkpoint": str(result.checkpoint), "image": list(config.image), "cameras": list(config.camera_names),
            "missing_frames": result.missing_frames, "missing_frames_by_camera": result.missing_by_camera}
