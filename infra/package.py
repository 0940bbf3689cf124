"""Package one stage for CloudFormation: template, compiled code, lint.

    python infra/package.py dev [--wheelhouse infra/.cache/wheelhouse]
    AWS_DEFAULT_REGION=ap-east-1 python infra/package.py prod    # lint for that region
    python infra/package.py cn                                      # always cn-north-1 (its STAGES region)

1. `infra/build.py` renders the merge template and IAM policies (kept in git; rewritten if stale);
2. `chalice package --stage S infra/out/S` writes sam.json and deployment.zip (Chalice
   `pip download`s manylinux wheels: an index, or a wheelhouse), then infra/merge-S.json is
   merged in exactly as `--merge-template` would (Chalice's TemplateDeepMerger), except that the
   patches for handlers app.py does not define yet are left out;
3. the zip gets `__pycache__/*.cpython-311.pyc` for everything in it (unchecked-hash: valid
   whatever mtimes Lambda's extraction leaves; Lambda's code directory is read-only, so without
   them every cold start compiles in memory: ~2x slower imports, chalice-notes.md section 6);
4. cfn-lint checks the final template: errors fail, warnings are printed.
Needs no AWS credentials; `infra/deploy.sh` uploads and deploys the result.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build  # noqa: E402

ROOT = build.ROOT
OUT = build.INFRA / "out"
DEFAULT_WHEELHOUSE = build.INFRA / ".cache" / "wheelhouse"
DEFAULT_REGION = "us-east-1"  # a global stage's template is region-independent; Chalice wants one
LAMBDA_TASK_ROOT = "/var/task"  # where Lambda unpacks the zip (paths in tracebacks)
WHEEL_PLATFORM = (
    "--platform",
    "manylinux2014_x86_64",
    "--implementation",
    "cp",
    "--python-version",
    "3.11",
    "--only-binary=:all:",
)


def region(stage: str | None = None) -> str:
    """Where the stage is packaged and linted for: its own region when infra/build.py STAGES pins
    one (cn: cn-north-1, so cfn-lint checks what the aws-cn partition offers), else the
    environment's, else us-east-1."""
    pinned = build.STAGES[stage].region if stage is not None else None
    return pinned or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or DEFAULT_REGION


def _requirements(project_dir: Path) -> list[str]:
    path = project_dir / "requirements.txt"
    if not path.exists():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def ensure_wheelhouse(project_dir: Path = ROOT, wheelhouse: Path = DEFAULT_WHEELHOUSE) -> Path:
    """Download requirements.txt's wheels once (Lambda's platform and this machine's, since
    Chalice tries both); later packaging runs offline from it. Re-downloads when the file
    changes."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    requirements = "\n".join(_requirements(project_dir))
    stamp = wheelhouse / ".requirements.sha256"
    digest = hashlib.sha256(requirements.encode()).hexdigest()
    if not requirements or (stamp.exists() and stamp.read_text() == digest):
        return wheelhouse
    req_file = project_dir / "requirements.txt"
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "-d", str(wheelhouse)]
    subprocess.run([*pip, *WHEEL_PLATFORM, "-r", str(req_file)], check=True)
    subprocess.run([*pip, "-r", str(req_file)], check=True)
    stamp.write_text(digest)
    return wheelhouse


def _chalice() -> str:
    local = Path(sys.executable).with_name("chalice")
    return str(local) if local.exists() else (shutil.which("chalice") or "chalice")


def chalice_package(
    stage: str, outdir: Path, *, project_dir: Path = ROOT, wheelhouse: Path | None = None
) -> Path:
    """Run `chalice package` for the stage; returns outdir/sam.json (not merged yet)."""
    env = dict(os.environ)
    env["AWS_DEFAULT_REGION"] = env["AWS_REGION"] = region(stage)
    # app.py reads queue names from the environment at import: give it the stage's, so the
    # event sources Chalice writes name the stage's queues (template_problems checks).
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    env.update(build.stage_env(config, stage))
    if wheelhouse is not None:
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse))
    if outdir.exists():
        shutil.rmtree(outdir)
    subprocess.run(
        [_chalice(), "--project-dir", str(project_dir), "package", "--stage", stage, str(outdir)],
        check=True,
        env=env,
        cwd=project_dir,
    )
    return outdir / "sam.json"


def merge(template_path: Path, merge_template: dict) -> list[str]:
    """What `chalice package --merge-template` does (Chalice's own TemplateDeepMerger), minus
    the patches for functions app.py does not define yet: merged alone, such a patch would be a
    resource without a Type. Returns the functions skipped."""
    from chalice.package import TemplateDeepMerger

    template = json.loads(template_path.read_text())
    present = set(template["Resources"])
    patches = dict(merge_template["Resources"])
    skipped = [fn for fn in build.FUNCTIONS if fn.resource not in present]
    for fn in skipped:
        for name in (fn.resource, fn.role, f"{fn.resource}LogGroup"):
            patches.pop(name, None)
    merged = TemplateDeepMerger().merge({**merge_template, "Resources": patches}, template)
    template_path.write_text(json.dumps(merged, indent=2) + "\n")
    return [fn.python_name for fn in skipped]


def compile_zip(zip_path: Path, *, runtime: str = "python3.11") -> list[str]:
    """Add unchecked-hash .pyc for every .py in the zip; returns the names added.

    Compiled by this interpreter, which must be the runtime's version (pyc magic numbers differ
    between minor versions). PYTHONHASHSEED=0 makes the bytecode reproducible, so an unchanged
    app gives a byte-identical zip and CloudFormation skips the code update."""
    if f"python{sys.version_info[0]}.{sys.version_info[1]}" != runtime:
        raise SystemExit(f"compile with {runtime}, not {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(zip_path) as original:
        original.extractall(tmp)
        entries = [
            (info, original.read(info))
            for info in original.infolist()
            if "__pycache__/" not in info.filename and not info.filename.endswith(".pyc")
        ]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "compileall",
                "-q",
                "-j0",
                "--invalidation-mode",
                "unchecked-hash",
                "-d",
                LAMBDA_TASK_ROOT,
                ".",
            ],
            cwd=tmp,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
        )
        sources = {info.filename for info, _ in entries if info.filename.endswith(".py")}
        pycs = sorted(
            str(p.relative_to(tmp))
            for p in Path(tmp).rglob(f"__pycache__/*.{sys.implementation.cache_tag}.pyc")
        )
        compiled = {_source_of(name) for name in pycs}
        ours = {s for s in sources if s == "app.py" or s.startswith("chalicelib/")}
        if ours - compiled:
            raise SystemExit(f"could not compile {sorted(ours - compiled)}:\n{result.stdout}")
        if result.returncode:  # e.g. templates or py2-only test files inside a dependency
            print(f"compileall skipped {len(sources - compiled)} file(s) in dependencies", file=sys.stderr)
        new = zip_path.with_suffix(".tmp")
        with zipfile.ZipFile(new, "w", zipfile.ZIP_DEFLATED) as out:
            for info, data in entries:
                out.writestr(info, data)
            for name in pycs:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(info, (Path(tmp) / name).read_bytes())
        new.replace(zip_path)
    return pycs


def _source_of(pyc: str) -> str:
    folder, _, filename = pyc.rpartition("__pycache__/")
    return folder + filename.split(".", 1)[0] + ".py"


def template_problems(template: dict, stage: str) -> list[str]:
    """What cfn-lint cannot know: the merge matched Chalice's functions, and each event source
    reads the stage's queue with the batching its QueueSpec declares."""
    problems = []
    resources = template["Resources"]
    functions = {k for k, r in resources.items() if r.get("Type") == "AWS::Serverless::Function"}
    unknown = functions - {fn.resource for fn in build.FUNCTIONS}
    if unknown:
        problems.append(
            f"functions {sorted(unknown)} are not in infra/build.py FUNCTIONS: add them there "
            f"(and say whether they call WeCom, which needs the fixed egress IP)"
        )
    untyped = sorted(k for k, r in resources.items() if "Type" not in r)
    if untyped:
        problems.append(f"merge template patches resources Chalice did not generate: {untyped}")
    names = build.stage_settings(build.load_config(), stage)
    for fn in build.FUNCTIONS:
        if fn.queue is None or fn.resource not in resources:
            continue
        props = resources[fn.resource]["Properties"]["Events"][fn.event_source]["Properties"]
        queue = props["Queue"]
        arn = queue.get("Fn::Sub", "") if isinstance(queue, dict) else str(queue)
        if not arn.endswith(f":{fn.queue.name(names)}") or len(queue) != 1:
            problems.append(f"{fn.event_source} reads {queue}, not {fn.queue.name(names)}")
        declared = (props.get("BatchSize"), props.get("MaximumBatchingWindowInSeconds", 0))
        if declared != (fn.queue.batch_size, fn.queue.batching_window):
            problems.append(
                f"{fn.event_source}: batch {declared} != queues.{fn.queue.logical_name.upper()} "
                f"({fn.queue.batch_size}, {fn.queue.batching_window})"
            )
    return problems


def lint(template_path: Path, regions: list[str] | None = None) -> tuple[list[str], list[str]]:
    """cfn-lint (SAM transform included): (errors, warnings and informational)."""
    from cfnlint.api import lint as cfn_lint

    matches = cfn_lint(template_path.read_text(), regions=regions or [region()])
    errors = [str(m) for m in matches if m.rule.id.startswith("E")]
    others = [str(m) for m in matches if not m.rule.id.startswith("E")]
    return errors, others


def package(
    stage: str,
    *,
    project_dir: Path = ROOT,
    outdir: Path | None = None,
    wheelhouse: Path | None = None,
) -> Path:
    outdir = outdir or OUT / stage
    files = build.render()
    for path in build.stale_files(files):
        path.write_text(files[path])
        print(f"regenerated {path.relative_to(ROOT)}")
    template = chalice_package(stage, outdir, project_dir=project_dir, wheelhouse=wheelhouse)
    skipped = merge(template, json.loads(build.merge_template_path(stage).read_text()))
    if skipped:
        print(f"not in app.py (yet), left out of the merge: {', '.join(skipped)}", file=sys.stderr)
    runtime = next(
        r["Properties"]["Runtime"]
        for r in json.loads(template.read_text())["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    )
    problems = template_problems(json.loads(template.read_text()), stage)
    if problems:
        raise SystemExit("packaged template:\n" + "\n".join(problems))
    pycs = compile_zip(outdir / "deployment.zip", runtime=runtime)
    print(f"{outdir / 'deployment.zip'}: {len(pycs)} .pyc added")
    errors, warnings = lint(template, [region(stage)])
    for line in warnings:
        print(f"cfn-lint: {line}", file=sys.stderr)
    if errors:
        raise SystemExit("cfn-lint errors:\n" + "\n".join(errors))
    print(f"{template}: cfn-lint clean for {region(stage)} ({len(warnings)} warning(s))")
    return template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=sorted(build.STAGES))
    parser.add_argument("--outdir", type=Path, help="default: infra/out/<stage>")
    parser.add_argument(
        "--wheelhouse",
        type=Path,
        nargs="?",
        const=DEFAULT_WHEELHOUSE,
        help=f"package offline from this wheelhouse (filled once from the index; "
        f"default {DEFAULT_WHEELHOUSE.relative_to(ROOT)})",
    )
    args = parser.parse_args(argv)
    wheelhouse = ensure_wheelhouse(ROOT, args.wheelhouse) if args.wheelhouse else None
    package(args.stage, outdir=args.outdir, wheelhouse=wheelhouse)
    return 0


if __name__ == "__main__":
    sys.exit(main())
