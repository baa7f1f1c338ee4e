"""Experiment trackers through accelerate (``report_to``): the resolved config once per run,
each step's metrics once, TensorBoard in <out>/tb, a missing package noticed and skipped, bad
names refused when the config loads."""

import json

import pytest

import fake_tracker
from reasonlab.config import ConfigError, from_dict
from reasonlab.train import trackers
from reasonlab.train.sft import SFTConfig
from test_sft import cfg, data  # noqa: F401  (the module's data fixture)


def sft(tmp_path, tiny_dir, data_path, **extra):
    from reasonlab.train.sft import SFTTrainer

    c = cfg(tiny_dir, data_path, epochs=1, max_steps=3, save_every=0, **extra)
    return SFTTrainer(from_dict(SFTConfig, c), tmp_path)


def test_config_once_metrics_every_step(tmp_path, tiny_dir, data):
    fake_tracker.CALLS.clear()
    hist = sft(tmp_path, tiny_dir, data, report_to="fake_tracker:make").train(progress=False)
    events = [e for e, _ in fake_tracker.CALLS]
    assert events == ["start", "config", "log", "log", "log", "finish"]
    assert fake_tracker.CALLS[0][1] == ("reasonlab", tmp_path.name)
    config = fake_tracker.CALLS[1][1]
    assert config["optim.lr"] == 3e-3 and config["report_to"] == "fake_tracker:make"
    assert all(isinstance(v, (bool, int, float, str)) for v in config.values())
    logged = [payload for e, payload in fake_tracker.CALLS if e == "log"]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [step for step, _ in logged] == [1, 2, 3] == [r["step"] for r in rows] == [h["step"] for h in hist]
    for (_, values), row in zip(logged, rows):
        assert values["loss"] == row["loss"] and "step" not in values


def test_tensorboard_writes_under_the_run(tmp_path, tiny_dir, data):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sft(tmp_path, tiny_dir, data, report_to="tensorboard").train(progress=False)
    events = sorted((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss")] == [1, 2, 3]


def test_missing_tracker_is_noticed_and_training_goes_on(tmp_path, tiny_dir, data, monkeypatch, caplog):
    kind = trackers.TRACKERS.get("wandb")
    monkeypatch.setitem(trackers.TRACKERS._items, "wandb",
                        trackers.TrackerKind(kind.package, lambda: False, kind.make))
    fake_tracker.CALLS.clear()
    with caplog.at_level("WARNING"):
        hist = sft(tmp_path, tiny_dir, data, report_to="wandb,fake_tracker:make").train(progress=False)
    notices = [r.getMessage() for r in caplog.records if "report_to" in r.getMessage()]
    assert notices == ["report_to: wandb is not installed (pip install wandb); training goes on without it"]
    assert len(hist) == 3 and [e for e, _ in fake_tracker.CALLS].count("log") == 3


def test_none_sends_nothing(tmp_path, tiny_dir, data):
    t = sft(tmp_path, tiny_dir, data, report_to="none")
    assert not t.acc.log_with
    t.train(progress=False)
    assert not (tmp_path / "tb").exists() and (tmp_path / "metrics.jsonl").exists()


@pytest.mark.parametrize("value, message", [
    ("tensorbord", r"report_to: unknown tracker 'tensorbord'; valid: mlflow, tensorboard, trackio, wandb"),
    ("none,wandb", r"report_to: none cannot be combined"),
    ("", r"report_to: empty"),
])
def test_bad_names_refused_when_loaded(tmp_path, value, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(SFTConfig, {"data": "x.jsonl", "report_to": value})


def test_flat_config_is_scalars():
    flat = trackers.flat_config({"a": {"b": 1, "c": [1, 2]}, "d": None, "e": True})
    assert flat == {"a.b": 1, "a.c": "[1, 2]", "d": "None", "e": True}
