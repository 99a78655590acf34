"""`crmsync cycle` (sync + plan + apply, live) against a baseline git ref, side by side.

The same round runs twice in one invocation: once with the code of a baseline ref (default
f4fcd7d, main before issue 17, checked out with `git worktree add --detach`) and once with this
checkout's, each in its own Python process (PYTHONPATH=<tree>/src, the same venv), each against
a fresh sandbox (this checkout's, in its own process, the same seed) with N Salesforce
opportunities and a fresh SQLite store. Both shipped workflows run live, as `crmsync cycle`
would run them (the owners' default daily task budget applies). Prints, per tree, the seconds
of each phase: sync (a full pull), plan (rule evaluation, timed inside apply), apply (the rest:
drafting, budget, recording, sending, checking), the write-back's API calls and what was done,
then the ratio. Wall-clock on a shared machine: rough; call counts and actions are exact.

    .venv/bin/python bench/cycle.py --opportunities 10000 [--base f4fcd7d]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sandbox_process import sandbox_process

ROOT = Path(__file__).resolve().parents[1]


def tree_for(ref: str) -> Path:
    """A detached worktree of `ref` under the temporary folder (made once, then reused)."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", ref],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    path = Path(tempfile.gettempdir()) / f"cycle-base-{commit}"
    if not (path / "src" / "crmsync").is_dir():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit],
            check=True, capture_output=True,
        )  # fmt: skip
    return path


def write_setup(info: dict[str, Any], folder: Path) -> Path:
    """A config with the sandbox's Salesforce, a fresh SQLite store, and both shipped
    workflows switched to live; returns the config's path."""
    flows = folder / "workflows"
    flows.mkdir()
    for source in sorted((ROOT / "workflows").glob("*.yaml")):
        text = source.read_text().replace("\nmode: shadow", "\nmode: live", 1)
        (flows / source.name).write_text(text)
    sf = info["salesforce"]
    config = {
        "store": {"url": f"sqlite:///{folder / 'store.db'}"},
        "workflows": str(flows),
        "connections": [
            {
                "name": "sf",
                "type": "salesforce",
                "mapping": str(ROOT / "connectors/salesforce.yaml"),
                "auth": {
                    "method": "client_credentials",
                    "login_url": sf["login_url"],
                    "client_id": sf["client_id"],
                    "client_secret": sf["client_secret"],
                    "ca_file": info["ca_path"],
                },
            }
        ],
    }
    path = folder / "crmsync.json"
    path.write_text(json.dumps(config))
    return path


def child(config_path: Path) -> None:
    """One cycle with whatever crmsync is on the path; prints its figures as one JSON line."""
    import crmsync.app.apply as apply_module
    from crmsync.app.runner import run_syncs
    from crmsync.config import load_config
    from crmsync.logs import configure
    from crmsync.store import Store

    configure("error")
    spent = [0.0]
    original = apply_module.evaluate

    def evaluate(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    apply_module.evaluate = evaluate  # type: ignore[assignment]
    started = time.perf_counter()
    config = load_config(config_path)
    loaded = time.perf_counter()
    summaries = run_syncs(config_path, config=config)
    synced = time.perf_counter()
    assert all(s.status == "ok" for s in summaries), summaries
    with Store.open(config.store.url) as store:
        report = apply_module.apply(config, store)
    done = time.perf_counter()
    (sent,) = report.sends
    print(
        json.dumps(
            {
                "config": loaded - started,
                "sync": synced - loaded,
                "plan": spent[0],
                "apply": done - synced - spent[0],
                "total": done - started,
                "firings": sum(w.firings for w in report.workflows),
                "planned": report.planned(),
                "writeback_calls": sent.api_calls,
                "done": sent.created + sent.flagged + sent.updated + sent.completed,
                "superseded": sent.superseded,
                "left": sent.left,
            }
        )
    )


def run_tree(label: str, src: Path, opportunities: int, seed: int) -> dict[str, Any]:
    with sandbox_process(opportunities) as (info, _pid), tempfile.TemporaryDirectory() as tmp:
        assert info.get("seed", seed) == seed
        config_path = write_setup(info, Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(src)}
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(config_path)],
            env=env, check=True, capture_output=True, text=True, cwd=tmp,
        ).stdout  # fmt: skip
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    print(
        f"  {label:28s} sync={figures['sync']:6.2f}s plan={figures['plan']:6.2f}s "
        f"apply={figures['apply']:6.2f}s total={figures['total']:6.2f}s "
        f"(config {figures['config']:.2f}s)  firings={figures['firings']} "
        f"planned={figures['planned']} done={figures['done']} "
        f"superseded={figures['superseded']} left={figures['left']} "
        f"writeback_api_calls={figures['writeback_calls']}"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", "-n", type=int, nargs="+", default=[10_000])
    parser.add_argument("--base", default="f4fcd7d", help="the baseline git ref")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    base = tree_for(args.base)
    os.environ["PYTHONPATH"] = str(ROOT / "src")  # the sandbox: this checkout's, for both
    for n in args.opportunities:
        print(f"crmsync cycle, {n} Salesforce opportunities, both shipped workflows live, "
              f"SQLite; sandbox in its own process (seed 7)")  # fmt: skip
        before = run_tree(f"base {args.base}", base / "src", n, 7)
        after = run_tree("this checkout", ROOT / "src", n, 7)
        ratios = "  ".join(
            f"{phase}={before[phase] / after[phase]:.2f}x"
            for phase in ("sync", "plan", "apply", "total")
            if after[phase] > 0
        )
        print(f"  speed-up (base / this checkout): {ratios}")


if __name__ == "__main__":
    main()
