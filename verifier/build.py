"""Build ``portal-verify`` as its own wheel: ``python verifier/build.py [DIST_DIR]``.

The wheel holds ``portal/verify`` and exactly the portal modules it imports, found by following
its ``import`` statements (:func:`closure`), with empty package ``__init__`` files above them, so
nothing of the web application comes along. Its dependencies are those of
``verifier/pyproject.toml``; the build stops when the verifier imports a third-party module that
is not declared there, or one of the server's (Flask, SQLAlchemy, WeasyPrint, ReportLab …).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ROOT_PACKAGE = "portal.verify"
#: Import name -> distribution name of what the verifier may use.
DISTRIBUTIONS = {
    "gnupg": "python-gnupg",
    "bagit": "bagit",
    "jsonschema": "jsonschema",
    "rfc3161_client": "rfc3161-client",  # the manifest signature's time-stamp
    "cryptography": "cryptography",  # the time-stamp's certificate chain
}
SERVER_ONLY = {"flask", "werkzeug", "sqlalchemy", "weasyprint", "reportlab", "huey", "jinja2"}


class BuildRefused(Exception):
    """The verifier would import something it must not, or that is not declared."""


def _module_file(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    file = base.with_suffix(".py")
    return file if file.is_file() else None


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by ``path`` (``if TYPE_CHECKING:`` blocks skipped)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def closure() -> tuple[set[str], set[str]]:
    """The portal modules ``portal.verify`` needs (its package whole), and the top-level names
    of the other modules they import that are not in the standard library."""
    package = REPO / "portal" / "verify"
    todo = [f"{ROOT_PACKAGE}.{path.stem}" for path in package.glob("*.py")]
    todo = [name.removesuffix(".__init__") for name in todo]
    modules: set[str] = set()
    third_party: set[str] = set()
    while todo:
        name = todo.pop()
        file = _module_file(name)
        if name in modules or file is None:
            continue
        modules.add(name)
        for imported in _imports(file):
            top = imported.split(".")[0]
            if top == "portal":
                todo.append(imported)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
    return modules, third_party


def check(third_party: set[str], declared: list[str]) -> None:
    server = sorted(third_party & SERVER_ONLY)
    if server:
        raise BuildRefused(f"portal.verify imports server modules: {', '.join(server)}")
    names = {dep.split(">")[0].split("<")[0].split("=")[0].strip() for dep in declared}
    missing = sorted(t for t in third_party if DISTRIBUTIONS.get(t) not in names)
    if missing:
        raise BuildRefused(
            f"portal.verify imports {', '.join(missing)}: declare it in verifier/pyproject.toml "
            "and in DISTRIBUTIONS (verifier/build.py)"
        )


def stage(into: Path) -> None:
    """Copy the pyproject and the closure's files (with the JSON files beside them) into
    ``into``; every package above them gets an empty ``__init__.py``."""
    project = tomllib.loads((HERE / "pyproject.toml").read_text(encoding="utf-8"))
    modules, third_party = closure()
    check(third_party, project["project"]["dependencies"])
    shutil.copy(HERE / "pyproject.toml", into / "pyproject.toml")
    for name in sorted(modules):
        source = _module_file(name)
        assert source is not None  # noqa: S101 - closure() kept only modules with files
        target = into / source.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
        for data in source.parent.glob("*.json"):
            shutil.copy(data, target.parent / data.name)
    for directory in (path for path in into.joinpath("portal").rglob("*") if path.is_dir()):
        init = directory / "__init__.py"
        if not init.exists():
            init.write_text('"""Part of portal-verify, the standalone verifier."""\n')
    top = into / "portal" / "__init__.py"
    top.write_text('"""portal-verify: the Sharing Portal\'s offline verifier, alone."""\n')


def build(dist: Path) -> Path:
    """Build the wheel into ``dist``; returns its path."""
    dist.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="portal-verify-build-") as work:
        staging = Path(work)
        stage(staging)
        subprocess.run(  # noqa: S603 - fixed argv
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist),
             str(staging)],
            check=True,
        )  # fmt: skip
    version = tomllib.loads((HERE / "pyproject.toml").read_text())["project"]["version"]
    return dist / f"portal_verify-{version}-py3-none-any.whl"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "dist"
    try:
        print(build(target))
    except BuildRefused as exc:
        sys.exit(f"verifier/build.py: {exc}")
