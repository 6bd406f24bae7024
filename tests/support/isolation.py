"""Keeping a test away from the user's and the system's data: the one place that knows where data is looked for."""
from minitorch_cnn.data import datasets as datasets_module


def isolate_from_user_data(tmp_path, monkeypatch):
    """No dataset is found outside the test's own folders: no $MINITORCH_DATA, a private cache, no system roots."""
    monkeypatch.delenv("MINITORCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(datasets_module, "SYSTEM_ROOTS", {})
