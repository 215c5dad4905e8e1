"""`derive report` on the reduced setting, and its network part without PyTorch."""

import sys

from derive import report


def test_quick_report_writes_markdown_and_figures(tmp_path):
    path = report.build(tmp_path / "r", quick=True, progress=None)
    text = path.read_text()
    for heading in (
        "## 1. Derived SDEs",
        "## 2. Closed forms",
        "## 3. Quadratic",
        "## 4. Neural networks",
        "## 5. Weak order",
    ):
        assert heading in text
    assert "FAILED" not in text
    assert (tmp_path / "r" / "report.json").is_file()
    assert (tmp_path / "r" / "quadratic" / "adam_sigma0.1.png").is_file()
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "**Skipped**" in text
    else:
        assert "| adam |" in text.split("## 4.")[1]
        assert (tmp_path / "r" / "networks" / "mlp_adam_sigma0.01.png").is_file()


def test_network_part_says_why_it_was_skipped_without_torch(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    setting = report.Setting(derivations=(), checks=(), quad_optimizers=(), weak_order=False)
    text = report.build(tmp_path, setting=setting, progress=None).read_text()
    assert "**Skipped**" in text and "PyTorch" in text
