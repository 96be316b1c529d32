"""The documentation stays true: the generated references equal what the code says, the README stays short and
its set-up is literally two commands, its links lead somewhere, and every Python snippet in README.md and docs/
runs (one that needs PyTorch, which no extra installs, is skipped by name)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
FENCE = re.compile(r"```python\n(.*?)```", re.S)
NEEDS_TORCH = "import torch"  # a snippet that needs PyTorch says so by importing it


def test_the_cli_reference_is_generated_from_the_app() -> None:
    from mlpcli.cli.reference import cli_reference

    assert (DOCS / "CLI.md").read_text(encoding="utf-8") == cli_reference(), "run: python scripts/docs.py"


def test_the_config_reference_is_generated_from_the_schema() -> None:
    from mlpcli.config_reference import config_reference, rows

    assert (DOCS / "CONFIG.md").read_text(encoding="utf-8") == config_reference(), "run: python scripts/docs.py"
    for key, _, _, text in rows():  # every key says what it is
        assert text.strip(), f"{key} has no description in the config schema"


def test_the_references_name_every_command_and_key() -> None:
    from mlpcli.config import ExperimentConfig, flatten

    cli = (DOCS / "CLI.md").read_text(encoding="utf-8")
    for command in ("train", "eval", "predict", "playground", "config show", "data fetch", "sweep", "export"):
        assert f"## `mlpcli {command}`" in cli
    config = (DOCS / "CONFIG.md").read_text(encoding="utf-8")
    for key in flatten(ExperimentConfig().model_dump()):
        assert f"| `{key}` |" in config, key


def test_the_readme_is_short_and_its_set_up_is_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    setup = text.split("## Set-up", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line for line in setup.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(commands) == 2, commands
    assert "train" not in commands[1] and "http" not in commands[1]  # the second needs the package registry only


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_between_the_pages_lead_somewhere(page: Path) -> None:
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
        if not re.match(r"[a-z]+:", target):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


SNIPPETS = [(page, i, code) for page in PAGES for i, code in enumerate(FENCE.findall(page.read_text("utf-8")))]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where the snippets' files exist: a picture of a digit, a model exported as ONNX and safetensors."""
    from PIL import Image

    from mlpcli.data.load import load_dataset

    folder = tmp_path_factory.mktemp("snippets")
    digit = load_dataset("mnist-sample").test_x[0].reshape(28, 28)
    Image.fromarray(255 - digit).resize((112, 112)).save(folder / "my-digit.png")
    env = dict(os.environ)
    run = [sys.executable, "-m", "mlpcli"]
    subprocess.run(
        [*run, "train", "-c", "quickstart", "--epochs", "1", "--out", "model", "-q"], cwd=folder, env=env, check=True
    )
    for name, extra in (("model.onnx", "onnx"), ("model.safetensors", "safetensors")):
        done = subprocess.run([*run, "export", "model", "-o", name], cwd=folder, env=env, capture_output=True)
        if done.returncode:  # the extra is not installed: the snippets that need the file are skipped
            module = {"onnx": "onnx", "safetensors": "safetensors"}[extra]
            installed = importlib.util.find_spec(module) is not None
            assert not installed, f"mlpcli export -o {name} failed with the {extra} extra installed: {done.stderr}"
            (folder / f"{name}.missing").write_text(extra)
    return folder


@pytest.mark.parametrize(("page", "index", "code"), SNIPPETS, ids=[f"{p.name}-{i}" for p, i, _ in SNIPPETS])
def test_every_python_snippet_runs(workdir: Path, page: Path, index: int, code: str) -> None:
    if NEEDS_TORCH in code:
        pytest.skip(f"{page.name} snippet {index} needs PyTorch, which no extra installs")
    for name in re.findall(r'"(model\.\w+)"', code):
        if (workdir / f"{name}.missing").exists():
            pytest.skip(f"the {(workdir / f'{name}.missing').read_text()} extra is not installed")
    for module in re.findall(r"^import (\w+)|^from (\w+)", code, re.M):
        name = module[0] or module[1]
        if name not in ("mlpcli", "numpy"):
            pytest.importorskip(name)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, f"{page.name} snippet {index} failed:\n{code}\n{result.stderr[-2000:]}"
