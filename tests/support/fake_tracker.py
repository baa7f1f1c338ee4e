"""An accelerate tracker that records what it is sent: ``report_to=fake_tracker:make``."""

from __future__ import annotations

from accelerate.tracking import GeneralTracker

CALLS: list[tuple] = []  # (event, payload) in order, for the test to read


class RecordingTracker(GeneralTracker):
    name = "recording"
    requires_logging_directory = False

    def __init__(self, project: str, run_name: str, out_dir):
        super().__init__()
        self.project, self.run_name, self.out_dir = project, run_name, out_dir

    @property
    def tracker(self):
        return self

    def start(self):
        CALLS.append(("start", (self.project, self.run_name)))

    def store_init_configuration(self, values: dict):
        CALLS.append(("config", dict(values)))

    def log(self, values: dict, step=None, **kwargs):
        CALLS.append(("log", (step, dict(values))))

    def finish(self):
        CALLS.append(("finish", None))


def make(project, run_name, out_dir):
    return RecordingTracker(project, run_name, out_dir)
