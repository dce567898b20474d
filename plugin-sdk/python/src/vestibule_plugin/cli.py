"""vestibule-plugin build | test — run in a plugin's folder.

  build   make the plugin's module a WebAssembly component for its world,
          with componentize-py
  test    run its tests with pytest

The plugin's pyproject.toml says its world: [tool.vestibule] world =
"enricher"; it may name its module (module = "plugin", the default: the
file plugin.py beside it) and the component (output = "dist/NAME.wasm").
"""

import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

WORLDS = ("filter", "enricher", "action")
SDK_SOURCE = Path(__file__).resolve().parent.parent


def fail(message: str) -> "NoReturn":  # noqa: F821
    print(f"vestibule-plugin: {message}", file=sys.stderr)
    sys.exit(1)


def manifest(folder: Path):
    path = folder / "pyproject.toml"
    if not path.exists():
        fail(f"no pyproject.toml in {folder}")
    project = tomllib.loads(path.read_text())
    settings = project.get("tool", {}).get("vestibule", {})
    world = settings.get("world")
    if world not in WORLDS:
        fail(f'{path}: [tool.vestibule] world must be one of {", ".join(WORLDS)}, not {world!r}')
    module = settings.get("module", "plugin")
    if not (folder / f"{module}.py").exists():
        fail(f"{path}: no {module}.py: name the plugin's module in [tool.vestibule] module")
    name = project.get("project", {}).get("name", folder.name)
    output = folder / settings.get("output", f"dist/{name}.wasm")
    return world, module, output


def build(folder: Path) -> int:
    world, module, output = manifest(folder)
    started = time.monotonic()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vestibule-plugin-") as work:
        Path(work, "vestibule_app.py").write_text(
            "import importlib\n"
            "from vestibule_plugin._component import world_for\n"
            f"WitWorld = world_for({world!r}, importlib.import_module({module!r}))\n"
        )
        engine = Path(sys.executable).parent / "componentize-py"
        command = [
            str(engine), "-d", str(SDK_SOURCE / "vestibule_plugin" / "wit"), "-w", world,
            "componentize", "vestibule_app", "-p", work, "-p", str(folder), "-p", str(SDK_SOURCE),
            "-o", str(output),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            fail(f"componentize-py could not build {module}.py:\n{done.stderr or done.stdout}")
    size = output.stat().st_size / 1e6
    shown = output.relative_to(folder) if output.is_relative_to(folder) else output
    print(f"built {shown} ({world}, componentize-py, {size:.1f} MB) in {time.monotonic() - started:.1f} s")
    return 0


def test(folder: Path) -> int:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", str(folder)], cwd=folder).returncode


def main() -> None:
    args = sys.argv[1:]
    folder = Path.cwd()
    if "--dir" in args:
        given = args[args.index("--dir") + 1 :]
        if not given:
            fail("--dir needs a folder")
        folder = Path(given[0]).resolve()
    match args[:1]:
        case ["build"]:
            sys.exit(build(folder))
        case ["test"]:
            sys.exit(test(folder))
        case _:
            fail("usage: vestibule-plugin build | test [--dir FOLDER]")
