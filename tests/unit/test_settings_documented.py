import re
from pathlib import Path

from service.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme():
    text = README.read_text("utf-8")
    missing = [name for name in Settings.model_fields if f"ICCS_{name.upper()}" not in text]
    assert not missing, f"settings missing from README: {missing}"


def test_readme_documents_no_unknown_settings():
    text = README.read_text("utf-8")
    documented = {n for n in re.findall(r"`ICCS_([A-Z_]+)`", text) if not n.startswith("TEST_")}
    known = {n.upper() for n in Settings.model_fields}
    assert documented <= known, documented - known


def test_settings_read_the_environment(monkeypatch):
    monkeypatch.setenv("ICCS_TARGET_PRECISION", "0.9")
    monkeypatch.setenv("ICCS_PORT", "9001")
    s = Settings()
    assert s.target_precision == 0.9 and s.port == 9001
    assert s.resolved_database_url().startswith("sqlite:///")
