"""``btob demo``: a simulated 4-member cluster on a jittery, lossy network with a crash."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from btob._sim import SimConfig, simulate
from faults import parse_fault, parse_net

__all__ = ["DEMO_NET", "run_demo"]

DEMO_NET = "loss=0.05,dup=0.01,delay=0.002-0.03,dist=exp,gst=1,jitter=0.05"
"""The demo's network: 5% loss, duplicates, heavy jitter, all until GST at 1 s."""


def run_demo(*, seed: int = 7, messages: int = 2000, log_dir: Path | None = None) -> int:
    """Run the demo, show progress and the verdict; 0 iff every property held."""
    from btob._cli import format_summary

    console = Console()
    n = 4
    config = SimConfig(
        n=n, seed=seed, messages=messages, net=parse_net(DEMO_NET, n),
        faults=(parse_fault("2=crash:at=0.4", n),),
    )
    console.print(
        f"btob demo: {n} members (member 0 sequences), member 2 crashes at t=0.4 s, "
        f"network {DEMO_NET}"
    )
    with Progress(
        TextColumn("[bold]delivered[/bold]"), BarColumn(), TextColumn("{task.completed:>6.0f}"),
        TextColumn("virtual t={task.fields[vt]:.2f}s"), console=console, transient=True,
    ) as progress:
        task = progress.add_task("deliveries", total=None, vt=0.0)

        def report(virtual_time: float, delivered: int) -> None:
            progress.update(task, completed=delivered, vt=virtual_time)

        result = simulate(config, log_dir=log_dir, progress=report)
    print(format_summary(result))
    if log_dir is not None:
        console.print(f"logs written to {log_dir}; judge them again with: btob check {log_dir}")
    return 0 if result.ok and result.complete else 1
