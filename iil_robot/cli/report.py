"""The report of a run: plots and a Markdown summary, made from the run's bags (the source of truth).

- ``episodes.png``: per episode, the share of ticks the operator drove and the outcome;
- ``learning_curve.png``: success rate and intervention rate over a moving window of
  episodes, with the policy version each episode ran;
- ``learner.png``: the learner's losses and Q values from its TensorBoard logs, when present;
- ``report.md`` and ``report.json``: totals and a row per episode, and the learner's last status when the job
  heard one (the sizes it trained with, its updates per env step against its budget).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from iil_robot.data.recordings import load_recording, summarise

WINDOW = 5


def moving_mean(values: list[float], window: int = WINDOW) -> np.ndarray:
    """Mean over the last ``window`` values at each index (fewer at the start)."""
    out = np.empty(len(values))
    for i in range(len(values)):
        out[i] = np.mean(values[max(0, i - window + 1):i + 1])
    return out


def write_report(run_dir: Path, title: str, learner: dict[str, str] | None = None) -> Path:
    """Read ``run_dir/bags``, write plots and ``report.md`` into ``run_dir/report``; return the .md path. ``learner``:
    the learner's last diagnostics values, as the job's console heard them."""
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(load_recording([run_dir / "bags"]))
    if learner:
        summary["learner"] = dict(learner)
    episodes = [e for e in summary["episodes"] if e["outcome"] != "unfinished"]
    (out / "report.json").write_text(json.dumps(summary, indent=2))
    images = []
    if episodes:
        images += [_plot_episodes(episodes, out / "episodes.png"), _plot_learning_curve(episodes, out / "learning_curve.png")]
    learner_plot = _plot_learner(run_dir / "learner", out / "learner.png")
    if learner_plot:
        images.append(learner_plot)
    path = out / "report.md"
    path.write_text(_markdown(title, summary, episodes, images))
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_episodes(episodes: list[dict], path: Path) -> str:
    plt = _plt()
    index = [e["index"] + 1 for e in episodes]
    rate = [100 * e["intervention_rate"] for e in episodes]
    colors = ["tab:green" if e["outcome"] == "success" else "tab:red" for e in episodes]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(index, rate, color=colors)
    ax.set_xlabel("episode")
    ax.set_ylabel("ticks driven by the operator (%)")
    ax.set_title("intervention rate per episode (green: success, red: failure / timeout)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path.name


def _plot_learning_curve(episodes: list[dict], path: Path) -> str:
    plt = _plt()
    window = max(WINDOW, len(episodes) // 15)  # about 15 windows per run: readable at 30 episodes and at 300
    index = [e["index"] + 1 for e in episodes]
    success = moving_mean([float(e["outcome"] == "success") for e in episodes], window)
    alone = moving_mean([float(e["outcome"] == "success" and e["interventions"] == 0) for e in episodes], window)
    rate = moving_mean([e["intervention_rate"] for e in episodes], window)
    versions = [max(e["policy_versions"]) if e["policy_versions"] else 0 for e in episodes]
    fig, ax = plt.subplots(figsize=(9, 4.6))
    ax.plot(index, 100 * success, color="tab:blue", alpha=0.5, label="success, operator included")
    ax.plot(index, 100 * alone, color="tab:green", linewidth=2, label="success without the operator")
    ax.plot(index, 100 * rate, color="tab:orange", linewidth=2, label="ticks driven by the operator")
    ax.set_xlabel("episode")
    ax.set_ylabel(f"% (mean over the last {window} episodes)")
    ax.set_ylim(-5, 105)
    twin = ax.twinx()
    twin.step(index, versions, where="mid", color="tab:gray", linestyle=":", label="policy version")
    twin.set_ylabel("policy version")
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=4,
              fontsize="small", frameon=False)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    twin.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("learning curve")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path.name


def _plot_learner(learner_dir: Path, path: Path) -> str | None:
    """Losses from the learner's TensorBoard event files; None when there are none."""
    files = sorted(learner_dir.rglob("events.out.tfevents.*")) if learner_dir.exists() else []
    if not files:
        return None
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: dict[str, tuple[list[int], list[float]]] = {}
    for f in files:
        acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            if "loss" in tag or tag.endswith("q_mean") or "/q" in tag:
                steps, values = series.setdefault(tag, ([], []))
                for event in acc.Scalars(tag):
                    steps.append(event.step)
                    values.append(event.value)
    if not series:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(series), 1, figsize=(9, 2.2 * len(series)), sharex=True, squeeze=False)
    for ax, (tag, (steps, values)) in zip(axes[:, 0], sorted(series.items())):
        ax.plot(steps, values)
        ax.set_ylabel(tag.split("/")[-1], fontsize="small")
        ax.set_title(tag, fontsize="small")
    axes[-1, 0].set_xlabel("learner updates")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path.name


def _learning_lines(totals: dict) -> list[str]:
    """Did the policy learn: the first third of the episodes against the last, and when learned weights first acted."""
    lines = []
    first = totals["first_learned_action_s"]
    if totals["run_s"] > 0:
        lines.append("- first action with learned weights: " + ("none in this run" if first is None else
                     f"{first:.0f} s into the {totals['run_s']:.0f} s run ({100 * first / totals['run_s']:.0f} %)"))
    parts = totals["thirds"]
    if parts:
        a, c = parts[0], parts[-1]
        ratio = f" ({c['operator_share'] / a['operator_share']:.2f}x)" if a["operator_share"] > 0 else ""
        lines += [f"- operator's share of the ticks: first third {100 * a['operator_share']:.0f} %, last third "
                  f"{100 * c['operator_share']:.0f} %{ratio}",
                  f"- success without the operator: first third {100 * a['policy_success_rate']:.0f} %, last third "
                  f"{100 * c['policy_success_rate']:.0f} % (all successes: {100 * a['success_rate']:.0f} % -> "
                  f"{100 * c['success_rate']:.0f} %)"]
    return lines


def _between_line(between: dict) -> str:
    if not between["count"]:
        return "- between episodes: -"
    return (f"- between episodes (the reset, or waiting for the operator): median {between['median']:.1f} s, "
            f"longest {between['max']:.1f} s over {between['count']}")


def learner_summary(learner: dict[str, str]) -> str:
    """One line on the learner: its updates, the sizes it trained with, its pace against the method's budget."""
    line = f"{learner.get('updates', '?')} updates ({learner.get('sizes', 'sizes not reported')}"
    line += f"; fusion {learner['fusion']})" if "fusion" in learner else ")"
    ratio, budget = learner.get("updates_per_env_step", "-"), learner.get("budget_per_env_step")
    if ratio != "-" and budget is not None:
        behind = float(ratio) < float(budget)
        line += f", {ratio} updates per env step over its last 30 s (budget {budget}{': fell behind' if behind else ''})"
    return line


def _markdown(title: str, summary: dict, episodes: list[dict], images: list[str]) -> str:
    t = summary["totals"]
    done = len(episodes)
    successes = sum(e["outcome"] == "success" for e in episodes)
    lines = [
        f"# {title}",
        "",
        f"- episodes: {done} finished ({', '.join(f'{k} {v}' for k, v in sorted(t['outcomes'].items()) if k != 'unfinished')})"
        + (f", {t['outcomes']['unfinished']} unfinished when the run stopped" if t["outcomes"].get("unfinished") else ""),
        f"- success rate: {100 * successes / done:.0f} %" if done else "- success rate: -",
        f"- interventions: {t['interventions']} ({t['interventions_per_episode']:.2f} per episode); "
        f"operator drove {100 * t['intervention_rate']:.1f} % of {t['steps']} ticks",
        f"- policy versions seen: {t['policy_versions'][0] if t['policy_versions'] else '-'} .. "
        f"{t['policy_versions'][-1] if t['policy_versions'] else '-'}",
        f"- lost ticks: {t['lost_ticks']} inside episodes, {t['ticks_missing_between_records']} in all; "
        f"{t['ticks_before_first_record']} mux ticks before the first record (published before the recorder subscribed); "
        f"undecodable records: {t['undecodable_records']}",
        *_learning_lines(t),
        _between_line(t["between_episodes_s"]),
        f"- bags: {', '.join(Path(b).name for b in summary['bags'])}",
    ]
    if "learner" in summary:
        lines.append(f"- learner: {learner_summary(summary['learner'])}")
    lines += [""]
    lines += [f"![{name}]({name})" for name in images]
    lines += ["", "| episode | outcome | steps | interventions | operator ticks | policy versions |", "|---|---|---|---|---|---|"]
    for e in episodes:
        versions = e["policy_versions"]
        lines.append(f"| {e['index'] + 1} | {e['outcome']} | {e['steps']} | {e['interventions']} | "
                     f"{100 * e['intervention_rate']:.0f} % | "
                     f"{min(versions) if versions else '-'}..{max(versions) if versions else '-'} |")
    return "\n".join(lines) + "\n"
