"""The live view of a running sweep: a running job's line shows its loss trend."""

from __future__ import annotations

from rich.console import Console

from harness.live import LiveState, running_view
from harness.progress import JobLaunched, JobProgressed
from memseg.result import Progress


def _screen(state: LiveState) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(running_view(state))
    return console.export_text()


def test_a_running_job_shows_the_trend_of_its_training_loss() -> None:
    state = LiveState()
    state.apply(JobLaunched("bottle-full-s0-abc", 1))
    state.apply(JobProgressed("bottle-full-s0-abc", Progress("memory", 0, 1)))  # no loss: not in the trend
    for step, loss in enumerate((0.8, 0.6, 0.5, 0.3, 0.2, 0.1), start=1):
        state.apply(JobProgressed("bottle-full-s0-abc", Progress("train", step, 6, loss)))
    assert state.running["bottle-full-s0-abc"].losses == [0.8, 0.6, 0.5, 0.3, 0.2, 0.1]
    screen = _screen(state)
    assert "trend" in screen and "█▆▅▃▂▁" in screen  # falling loss, highest block first
    assert "0.1000" in screen  # the latest loss beside it
