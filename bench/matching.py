"""Checking a text against 10 and against 10,000 protected identifiers (target: at most 2x).

Makes a statement of about ``--size`` MB (Latin, Arabic and Burmese lines, a few registered
names hidden in it: with harakat, Zawgyi, soft hyphens, a partial name) and a register of
fictional identifiers (three-part Latin names, Arabic names, Burmese names, phone numbers).
Then, for each register size, times in the same run, as min / median of ``--runs`` runs, wall
and CPU seconds of this process:

* raw: NFKC and case folding of the text, no search (the floor any normalising check pays);
* ``codes_in_text``: normalise the text and run it through the matcher's automaton (the leak
  check's text layer);
* ``locate``: the same with every hit mapped back to the source (what text redaction does);
* ``leak check (streamed)``: the whole leak check of the text as a file (raw bytes in
  UTF-8, cp1252 and UTF-16, the text read as it streams), with its automata compiled once
  beforehand, as assembly does for a package (:class:`StreamingCheck`);
* ``check_files``: the same, compiling the automata every time.

Prints each against raw, and the 10,000 / 10 ratio per step. Compiling the matcher is timed
once per register size and printed apart. Burmese lines are made of random words, so that
the Zawgyi detector's cache of phrases does not see the same line again and again.

    .venv/bin/python bench/matching.py                  # 1 MB, 10 vs 10,000, 5 runs
    .venv/bin/python bench/matching.py --size 4 --runs 3 --large 100000
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import random
import resource
import statistics
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

from portal.redaction.leakcheck import CHUNK_SIZE, LeakFound, StreamingCheck, check_files
from portal.redaction.matcher import Matcher
from portal.redaction.normalise import to_zawgyi

LATIN = ["ka", "lo", "mir", "tan", "zu", "vel", "dor", "ret", "qua", "bex", "pho", "gor", "sin"]
ARABIC = "بتثجحخدذرزسشصضطظعغفقكلمنهوي"
BURMESE = ["မြ", "သန္တာ", "ခင်", "ကြည်", "ဇော်", "ထွန်း", "လင်း", "စိုး", "နွယ်", "ဖြူ", "အောင်"]
LINES = [
    "The witness described the checkpoint on the northern road and the vehicles there.",
    "Several people were detained; the statement lists times and places in detail.",
    "شهدت الشاهدة نقطة التفتيش على الطريق الشمالي والمركبات هناك.",
]
BURMESE_WORDS = ["သက်သေ", "သည်", "စစ်ဆေးရေး", "ဂိတ်", "ကို", "ဖော်ပြ", "ခဲ့", "ရန်ကုန်", "မြို့", "တွင်"]

Timing = tuple[list[float], list[float]]


def identifiers(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """``count`` fictional identifiers, codes PI-1 ... PI-count."""
    terms = []
    for number in range(1, count + 1):
        kind = number % 4
        if kind == 0:
            tokens = [
                "".join(rng.choices(LATIN, k=rng.randint(2, 3))).capitalize() for _ in range(3)
            ]
            term = " ".join(tokens)
        elif kind == 1:
            term = " ".join("".join(rng.choices(ARABIC, k=rng.randint(4, 6))) for _ in range(2))
        elif kind == 2:
            term = "".join(rng.choices(BURMESE, k=3))
        else:
            term = f"+95 9 {rng.randint(100, 999)} {rng.randint(100, 999)} {rng.randint(100, 999)}"
        terms.append((f"PI-{number}", term))
    return terms


def statement(size_mb: float, hidden: list[str], rng: random.Random) -> str:
    rows: list[str] = []
    total = 0
    while total < size_mb * 1_000_000:
        if rng.random() < 0.25:
            words = [
                "".join(rng.choices(BURMESE_WORDS, k=rng.randint(1, 3)))
                for _ in range(rng.randint(3, 6))
            ]
            line = " ".join(words) + "။"
        else:
            line = rng.choice(LINES)
        if rng.random() < 0.002:
            line = f"{line} {rng.choice(hidden)}"
        rows.append(line)
        total += len(line.encode()) + 1
    return "\n".join(rows) + "\n"


def disguised(terms: list[tuple[str, str]]) -> list[str]:
    """A few of the register's names as a statement might write them."""
    latin = next(term for _code, term in terms if term[0].isascii() and term[0].isalpha())
    arabic = next(term for _code, term in terms if "\u0600" <= term[0] <= "\u06ff")
    burmese = next(term for _code, term in terms if "\u1000" <= term[0] <= "\u109f")
    first, second, _third = latin.split()
    marked = "\u064e".join(arabic)  # a fatha after every letter
    return [
        f"{first}\u00ad {second}".upper(),
        marked,
        to_zawgyi(burmese) or burmese,
        latin.replace(" ", "\n"),
    ]


_NAMES = itertools.count()


def stream(check: StreamingCheck, path: Path) -> None:
    """The leak check of one file as assembly runs it: prepared, then its bytes streamed."""
    name = f"data/statement-{next(_NAMES)}.txt"
    check.prepare(name, path)
    observer = check.observe(name)
    assert observer is not None
    with path.open("rb") as handle, contextlib.suppress(LeakFound):
        while chunk := handle.read(CHUNK_SIZE):
            observer.feed(chunk)
        observer.close()


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def timed(job: Callable[[], object], runs: int) -> Timing:
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), cpu_seconds()
        job()
        walls.append(time.perf_counter() - wall)
        cpus.append(cpu_seconds() - cpu)
    return walls, cpus


def line(name: str, times: Timing, raw: Timing) -> str:
    walls, cpus = times
    wall = f"wall min {min(walls):6.3f} s median {statistics.median(walls):6.3f} s"
    cpu = f"CPU min {min(cpus):6.3f} s median {statistics.median(cpus):6.3f} s"
    ratio = f"x raw: wall {min(walls) / min(raw[0]):5.2f}, CPU {min(cpus) / min(raw[1]):5.2f}"
    return f"{name:<26}: {wall}; {cpu}; {ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=1.0, help="text size in MB")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(14)
    register = identifiers(args.large, rng)
    small = register[: args.small]
    text = statement(args.size, disguised(small), rng)
    print(
        f"text: {len(text)} characters, {len(text.encode()) / 1e6:.2f} MB UTF-8; "
        f"registers of {args.small} and {args.large} identifiers; {args.runs} runs"
    )
    with tempfile.TemporaryDirectory(prefix="bench-matching-") as folder:
        path = Path(folder) / "statement.txt"
        path.write_text(text, encoding="utf-8")
        raw = timed(lambda: unicodedata.normalize("NFKC", text).casefold(), args.runs)
        print(line("raw NFKC + casefold", raw, raw))
        results: dict[str, dict[int, Timing]] = {}
        for terms in (small, register):
            start = time.perf_counter()
            matcher = Matcher(terms)
            compiled = time.perf_counter() - start
            found = sorted(matcher.codes_in_text(text), key=lambda code: int(code[3:]))
            print(
                f"-- {len(terms)} identifiers: matcher compiled in {compiled:.2f} s, "
                f"{len(found)} found in the text ({', '.join(found)})"
            )
            streaming = StreamingCheck(terms)
            steps: dict[str, Callable[[], object]] = {
                "codes_in_text": lambda matcher=matcher: matcher.codes_in_text(text),
                "locate": lambda matcher=matcher: matcher.locate(text),
                "leak check (streamed)": lambda check=streaming: stream(check, path),
                "check_files (compiles)": lambda terms=terms: check_files(
                    [("statement.txt", path)], terms
                ),
            }
            for name, job in steps.items():
                times = timed(job, args.runs)
                results.setdefault(name, {})[len(terms)] = times
                print(line(f"{name} [{len(terms)}]", times, raw))
    print(f"-- {args.large} / {args.small} identifiers (target at most 2):")
    for name, by_size in results.items():
        big, few = by_size[len(register)], by_size[len(small)]
        print(
            f"{name:<26}: wall {min(big[0]) / min(few[0]):5.2f}, "
            f"CPU {min(big[1]) / min(few[1]):5.2f}"
        )


if __name__ == "__main__":
    main()
