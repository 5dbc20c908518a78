"""Load and validate the policy files: ``sharing.toml`` and ``mandate.toml``.

Every problem is collected and reported at once as ``file: key: reason`` in a
:class:`PolicyError`, so an operator fixes them in one go. The keys are documented in
``policies/README.md``.

The policy revision is the SHA-256 of the canonical JSON of ``{file name: SHA-256 of its
bytes}`` for both files, so anyone can recompute it with the standard library::

    files = {name: hashlib.sha256(open(name, "rb").read()).hexdigest()
             for name in ("mandate.toml", "sharing.toml")}
    json.dumps(files, sort_keys=True, separators=(",", ":"))  # then sha256 of that text
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from string import Formatter
from types import MappingProxyType
from typing import Any

from portal.canonical import canonical_json, sha256_hex
from portal.eligibility.policy.mandate import CrimeCategory, Mandate, normalise_offence
from portal.eligibility.policy.rules import ACTIONS, REQUEST_FIELDS, RULES, Param, RuleSpec

__all__ = [
    "POLICY_FILES",
    "WORDING_KEYS",
    "Policy",
    "PolicyError",
    "Problem",
    "RulePolicy",
    "Template",
    "load_policy",
    "parse_policy",
    "policy_revision",
]

POLICY_FILES = ("sharing.toml", "mandate.toml")
#: Sentences the engine adds after a rule's own explanation, saying what follows from it.
WORDING_KEYS = (
    "withhold",
    "withhold_all",
    "redact",
    "manual_review",
    "block_request",
    "cannot_redact",
)
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*")
_DURATION = re.compile(r"\s*(\d{1,5})\s*(day|days|week|weeks)\s*")


@dataclass(frozen=True)
class Problem:
    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.reason}"


class PolicyError(Exception):
    """The policy files do not validate; one ``file: key: reason`` line per problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True)
class Template:
    """A wording with ``{placeholders}``, checked against the facts it may quote."""

    text: str
    fields: frozenset[str]

    def render(self, values: Mapping[str, str]) -> str:
        return self.text.format_map(values)


@dataclass(frozen=True)
class RulePolicy:
    """One ``[[rule]]`` of ``sharing.toml``: a registered rule as the policy applies it."""

    spec: RuleSpec
    title: str
    on_failure: str
    reference: str
    params: Mapping[str, object]
    explanations: Mapping[str, Template]

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def scope(self) -> str:
        return self.spec.scope


@dataclass(frozen=True)
class Policy:
    id: str
    title: str
    description: str
    revision: str
    rules: tuple[RulePolicy, ...]
    mandate: Mandate
    redactable_media_types: frozenset[str]
    wording: Mapping[str, Template]
    # File name -> text, kept so a decision can carry the exact policy it applied.
    sources: Mapping[str, str] = field(default_factory=dict)

    def rule(self, rule_id: str) -> RulePolicy:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def policy_revision(sources: Mapping[str, bytes]) -> str:
    """SHA-256 over the policy files (see the module docstring)."""
    digests = {name: sha256_hex(data) for name, data in sources.items()}
    return sha256_hex(canonical_json(digests))


def load_policy(policies_dir: Path) -> Policy:
    """Read and validate the policy in ``policies_dir``; raise :class:`PolicyError`."""
    if not policies_dir.is_dir():
        raise PolicyError(
            [Problem(str(policies_dir), "(directory)", "not found; set PORTAL_POLICIES_DIR")]
        )
    problems: list[Problem] = []
    sources: dict[str, bytes] = {}
    for name in POLICY_FILES:
        path = policies_dir / name
        try:
            sources[name] = path.read_bytes()
        except FileNotFoundError:
            problems.append(Problem(str(path), "(file)", "missing"))
        except OSError as exc:
            problems.append(Problem(str(path), "(file)", f"cannot be read: {exc.strerror}"))
    for extra in sorted(policies_dir.glob("*.toml")):
        if extra.name not in POLICY_FILES:
            problems.append(
                Problem(
                    str(extra),
                    "(file)",
                    f"unknown policy file; the policy is {' and '.join(POLICY_FILES)}",
                )
            )
    if problems:
        raise PolicyError(problems)
    return parse_policy(sources, origin=policies_dir)


def parse_policy(sources: Mapping[str, bytes], *, origin: Path | None = None) -> Policy:
    """Validate policy file contents (name -> bytes), e.g. the copy kept in a decision."""
    checker = _Checker(origin)
    missing = [name for name in POLICY_FILES if name not in sources]
    unknown = sorted(set(sources) - set(POLICY_FILES))
    for name in missing:
        checker.file = name
        checker.problem("(file)", "missing")
    for name in unknown:
        checker.file = name
        checker.problem("(file)", "unknown policy file")
    texts: dict[str, str] = {}
    tables: dict[str, dict[str, Any]] = {}
    for name in POLICY_FILES:
        if name not in sources:
            continue
        checker.file = name
        try:
            texts[name] = sources[name].decode("utf-8")
            tables[name] = tomllib.loads(texts[name])
        except UnicodeDecodeError:
            checker.problem("(file)", "not UTF-8 text")
        except tomllib.TOMLDecodeError as exc:
            checker.problem("(TOML syntax)", str(exc))
    mandate = sharing = None
    if "mandate.toml" in tables:
        checker.file = "mandate.toml"
        mandate = checker.mandate(tables["mandate.toml"])
    if "sharing.toml" in tables:
        checker.file = "sharing.toml"
        sharing = checker.sharing(tables["sharing.toml"])
    if checker.problems or mandate is None or sharing is None:
        raise PolicyError(checker.problems)
    return Policy(
        id=sharing.id,
        title=sharing.title,
        description=sharing.description,
        revision=policy_revision(sources),
        rules=sharing.rules,
        mandate=mandate,
        redactable_media_types=sharing.media_types,
        wording=sharing.wording,
        sources=MappingProxyType(dict(sorted(texts.items()))),
    )


# --- validation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sharing:
    id: str
    title: str
    description: str
    rules: tuple[RulePolicy, ...]
    media_types: frozenset[str]
    wording: Mapping[str, Template]


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f'the string "{value}"' if len(value) <= 40 else "a string"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _choices(values: tuple[str, ...] | list[str]) -> str:
    return " | ".join(values)


class _Checker:
    """Walks the parsed TOML, collecting every problem with its file and key."""

    def __init__(self, origin: Path | None) -> None:
        self.origin = origin
        self.file = ""
        self.problems: list[Problem] = []

    def problem(self, key: str, reason: str) -> None:
        label = str(self.origin / self.file) if self.origin is not None else self.file
        self.problems.append(Problem(label, key, reason))

    # generic shapes

    def keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
        for key in table:
            if key not in allowed:
                where = f"{path}.{key}" if path else key
                self.problem(where, f"unknown key; expected one of: {', '.join(allowed)}")

    def table(self, parent: Mapping[str, Any], key: str, path: str) -> dict[str, Any] | None:
        return self.table_value(parent.get(key), path, f"missing; add a [{path}] table")

    def table_value(self, value: object, where: str, missing: str) -> dict[str, Any] | None:
        """``value`` when it is a table; otherwise None and a problem at ``where`` (``missing``
        when there is no value at all)."""
        if value is None:
            self.problem(where, missing)
            return None
        if not isinstance(value, dict):
            self.problem(where, f"expected a table, got {_type_name(value)}")
            return None
        return value

    def text(
        self, table: Mapping[str, Any], key: str, path: str, *, required: bool = True
    ) -> str | None:
        where = f"{path}.{key}" if path else key
        if key not in table:
            if required:
                self.problem(where, "missing")
            return None
        return self.stripped(table[key], where)

    def stripped(self, value: object, where: str) -> str | None:
        """``value`` without surrounding white space, when it is a string with more than that."""
        if not isinstance(value, str):
            self.problem(where, f"expected a string, got {_type_name(value)}")
            return None
        if not value.strip():
            self.problem(where, "must not be empty")
            return None
        return value.strip()

    def day(self, table: Mapping[str, Any], key: str, *, required: bool) -> date | None:
        if key not in table:
            if required:
                self.problem(f"mandate.{key}", "missing; write a date such as 2023-05-01")
            return None
        value = table[key]
        if type(value) is not date:
            self.problem(
                f"mandate.{key}",
                f"expected a date such as 2023-05-01 (no quotes), got {_type_name(value)}",
            )
            return None
        return value

    def identifier(self, value: object, where: str) -> str | None:
        if not isinstance(value, str) or not _ID.fullmatch(value):
            self.problem(
                where,
                f"expected an identifier of lowercase letters, digits, '.', '_' or '-', "
                f"got {_type_name(value)}",
            )
            return None
        return value

    def template(self, value: object, where: str, allowed: frozenset[str]) -> Template | None:
        text = self.stripped(value, where)
        if text is None:
            return None
        try:
            parts = list(Formatter().parse(text))
        except ValueError as exc:
            self.problem(where, f"not a valid wording ({exc}); write {{{{ and }}}} for braces")
            return None
        fields: set[str] = set()
        for _literal, name, spec, conversion in parts:
            if name is None:
                continue
            if not name.isidentifier():
                self.problem(where, f"placeholder {{{name}}} must be a plain name such as {{rfa}}")
                return None
            if spec or conversion:
                self.problem(where, f"placeholder {{{name}}} may not carry a format or conversion")
                return None
            if name not in allowed:
                self.problem(
                    where,
                    f"unknown placeholder {{{name}}}; this wording may use "
                    f"{', '.join('{' + f + '}' for f in sorted(allowed)) or 'no placeholders'}",
                )
                return None
            fields.add(name)
        return Template(text, frozenset(fields))

    # mandate.toml

    def mandate(self, data: dict[str, Any]) -> Mandate | None:
        self.keys(data, ("mandate", "crime_category"), "")
        table = self.table(data, "mandate", "mandate")
        categories = self.categories(data.get("crime_category"))
        if table is None:
            return None
        self.keys(table, ("situation", "period_start", "period_end", "description"), "mandate")
        situation = self.text(table, "situation", "mandate")
        description = self.text(table, "description", "mandate", required=False) or ""
        start = self.day(table, "period_start", required=True)
        end = self.day(table, "period_end", required=False)
        if start is not None and end is not None and end < start:
            self.problem("mandate.period_end", f"is before period_start ({start.isoformat()})")
            return None
        if situation is None or start is None or categories is None:
            return None
        return Mandate(situation, start, end, categories, description)

    def categories(self, value: object) -> tuple[CrimeCategory, ...] | None:
        if value is None:
            self.problem("crime_category", "missing; add at least one [[crime_category]]")
            return None
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            self.problem(
                "crime_category",
                f"expected one or more [[crime_category]], got {_type_name(value)}",
            )
            return None
        result: list[CrimeCategory] = []
        seen_ids: set[str] = set()
        seen_offences: dict[str, str] = {}
        for index, entry in enumerate(value, start=1):
            path = f"crime_category[{index}]"
            self.keys(entry, ("id", "name", "offences"), path)
            category_id = self.identifier(entry.get("id"), f"{path}.id")
            if category_id is not None:
                if category_id in seen_ids:
                    self.problem(f"{path}.id", f'"{category_id}" is used by another category')
                seen_ids.add(category_id)
                path = f"crime_category.{category_id}"
            name = self.text(entry, "name", path)
            offences = entry.get("offences")
            if not isinstance(offences, list) or not offences:
                self.problem(
                    f"{path}.offences",
                    f"expected a non-empty array of offence names, got {_type_name(offences)}",
                )
                continue
            good: list[str] = []
            for number, offence in enumerate(offences, start=1):
                where = f"{path}.offences[{number}]"
                if not isinstance(offence, str) or not offence.strip():
                    self.problem(where, f"expected an offence name, got {_type_name(offence)}")
                    continue
                key = normalise_offence(offence)
                if key in seen_offences:
                    also = seen_offences[key]
                    self.problem(where, f'"{offence}" is listed twice (also in {also})')
                    continue
                seen_offences[key] = path
                good.append(" ".join(offence.split()))
            if category_id is not None and name is not None:
                result.append(CrimeCategory(category_id, name, tuple(good)))
        return tuple(result)

    # sharing.toml

    def sharing(self, data: dict[str, Any]) -> _Sharing | None:
        self.keys(data, ("policy", "redaction", "wording", "rule"), "")
        head = self.table(data, "policy", "policy")
        policy_id = title = None
        description = ""
        if head is not None:
            self.keys(head, ("id", "title", "description"), "policy")
            if "id" not in head:
                self.problem("policy.id", "missing")
            else:
                policy_id = self.identifier(head["id"], "policy.id")
            title = self.text(head, "title", "policy")
            description = self.text(head, "description", "policy", required=False) or ""
        media_types = self.redaction(data)
        wording = self.wording(data)
        rules = self.rules(data.get("rule"))
        if (
            policy_id is None
            or title is None
            or media_types is None
            or wording is None
            or rules is None
        ):
            return None
        return _Sharing(policy_id, title, description, rules, media_types, wording)

    def redaction(self, data: dict[str, Any]) -> frozenset[str] | None:
        table = self.table(data, "redaction", "redaction")
        if table is None:
            return None
        self.keys(table, ("redactable_media_types",), "redaction")
        value = table.get("redactable_media_types")
        where = "redaction.redactable_media_types"
        if not isinstance(value, list):
            self.problem(where, f"expected an array of media types, got {_type_name(value)}")
            return None
        bad = [v for v in value if not isinstance(v, str) or not _MEDIA_TYPE.fullmatch(v)]
        if bad:
            self.problem(where, f"{_type_name(bad[0])} is not a media type such as application/pdf")
            return None
        return frozenset(value)

    def wording(self, data: dict[str, Any]) -> Mapping[str, Template] | None:
        table = self.table(data, "wording", "wording")
        if table is None:
            return None
        self.keys(table, WORDING_KEYS, "wording")
        result: dict[str, Template] = {}
        for key in WORDING_KEYS:
            where = f"wording.{key}"
            if key not in table:
                self.problem(where, "missing")
                continue
            allowed = frozenset(REQUEST_FIELDS) | ({"why"} if key == "cannot_redact" else set())
            template = self.template(table[key], where, allowed)
            if template is not None:
                result[key] = template
        return MappingProxyType(result) if len(result) == len(WORDING_KEYS) else None

    def rules(self, value: object) -> tuple[RulePolicy, ...] | None:
        if value is None:
            self.problem("rule", "missing; list the rules that apply as [[rule]] tables")
            return None
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            self.problem("rule", f"expected one or more [[rule]] tables, got {_type_name(value)}")
            return None
        result: list[RulePolicy] = []
        seen: dict[str, int] = {}
        complete = True
        for index, entry in enumerate(value, start=1):
            rule = self.rule(index, entry, seen)
            complete = complete and rule is not None
            if rule is not None:
                result.append(rule)
        for spec in RULES.values():
            if spec.mandatory and spec.id not in seen:
                self.problem(
                    "rule",
                    f'the terms of reference require rule "{spec.id}"; add a [[rule]] with '
                    f'id = "{spec.id}"',
                )
                complete = False
        return tuple(result) if complete else None

    def rule(self, index: int, entry: dict[str, Any], seen: dict[str, int]) -> RulePolicy | None:
        path = f"rule[{index}]"
        rule_id = entry.get("id")
        if rule_id is None:
            self.problem(f"{path}.id", "missing")
            return None
        if not isinstance(rule_id, str):
            self.problem(f"{path}.id", f"expected a rule id, got {_type_name(rule_id)}")
            return None
        if rule_id not in RULES:
            self.problem(f"{path}.id", f'unknown rule "{rule_id}"; known rules: {", ".join(RULES)}')
            return None
        if rule_id in seen:
            first = seen[rule_id]
            self.problem(f"{path}.id", f'rule "{rule_id}" is already listed as rule[{first}]')
            return None
        seen[rule_id] = index
        spec = RULES[rule_id]
        path = f"rule.{rule_id}"
        self.keys(entry, ("id", "title", "on_failure", "reference", "params", "explanation"), path)
        title = self.text(entry, "title", path, required=False) or spec.title
        reference = None
        if "reference" not in entry:
            self.problem(
                f"{path}.reference",
                "missing: every rule must cite its legal reference (e.g. the article of the "
                "terms of reference)",
            )
        else:
            reference = self.text(entry, "reference", path)
        on_failure = self.action(entry, spec, path)
        params = self.params(entry.get("params", {}), spec, path)
        explanations = self.explanations(entry.get("explanation"), spec, path)
        if reference is None or on_failure is None or params is None or explanations is None:
            return None
        return RulePolicy(spec, title, on_failure, reference, params, explanations)

    def action(self, entry: Mapping[str, Any], spec: RuleSpec, path: str) -> str | None:
        where = f"{path}.on_failure"
        value = entry.get("on_failure")
        if value is None:
            self.problem(where, f"missing; one of {_choices(spec.actions)}")
            return None
        if value not in ACTIONS:
            self.problem(
                where, f"{_type_name(value)} is not a failure action ({_choices(ACTIONS)})"
            )
            return None
        if value not in spec.actions:
            self.problem(
                where,
                f'"{value}" makes no sense for this rule; use one of {_choices(spec.actions)}',
            )
            return None
        assert isinstance(value, str)  # noqa: S101 - one of ACTIONS
        return value

    def params(self, value: object, spec: RuleSpec, path: str) -> Mapping[str, object] | None:
        where = f"{path}.params"
        if not isinstance(value, dict):
            self.problem(where, f"expected a table, got {_type_name(value)}")
            return None
        ok = True
        for key in value:
            if key not in spec.params:
                known = ", ".join(spec.params) or "none: this rule takes no parameters"
                self.problem(f"{where}.{key}", f"unknown parameter; known: {known}")
                ok = False
        result: dict[str, object] = {}
        for name, param in spec.params.items():
            if name not in value:
                result[name] = param.default
                continue
            parsed = self.param(value[name], param, f"{where}.{name}")
            ok = ok and parsed is not _INVALID
            result[name] = parsed
        return MappingProxyType(result) if ok else None

    def param(self, value: object, param: Param, where: str) -> object:
        if param.kind == "flag":
            if not isinstance(value, bool):
                self.problem(where, f"expected true or false, got {_type_name(value)}")
                return _INVALID
            return value
        if param.kind == "choice":
            if not isinstance(value, str) or value not in param.choices:
                self.problem(where, f"{_type_name(value)} is not one of {_choices(param.choices)}")
                return _INVALID
            return value
        if not isinstance(value, str):
            self.problem(where, f'expected a duration such as "730 days", got {_type_name(value)}')
            return _INVALID
        match = _DURATION.fullmatch(value)
        if match is None or int(match.group(1)) == 0:
            self.problem(
                where,
                f'"{value}" is not a duration; write a positive whole number of days or weeks, '
                'e.g. "730 days" or "104 weeks"',
            )
            return _INVALID
        count = int(match.group(1))
        return timedelta(weeks=count) if match.group(2).startswith("week") else timedelta(count)

    def explanations(
        self, value: object, spec: RuleSpec, path: str
    ) -> Mapping[str, Template] | None:
        where = f"{path}.explanation"
        missing = f"missing; give the wording for each of: {', '.join(spec.codes)}"
        value = self.table_value(value, where, missing)
        if value is None:
            return None
        result: dict[str, Template] = {}
        for key in value:
            if key not in spec.codes:
                self.problem(
                    f"{where}.{key}",
                    f"this rule reports no such outcome; it reports: {', '.join(spec.codes)}",
                )
        for code, about in spec.codes.items():
            if code not in value:
                self.problem(f"{where}.{code}", f"missing: the wording for when {about.doc}")
                continue
            allowed = frozenset(spec.fields) | frozenset(about.facts)
            template = self.template(value[code], f"{where}.{code}", allowed)
            if template is not None:
                result[code] = template
        if len(result) != len(spec.codes) or set(value) - set(spec.codes):
            return None
        return MappingProxyType(result)


_INVALID = object()
