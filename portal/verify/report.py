"""The report of a verification: the text a person reads, and the ``--json`` object."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from portal.verify.results import Outcome
from portal.verify.signatures import format_fingerprint

__all__ = ["render_json", "render_text"]


def render_json(outcome: Outcome) -> dict[str, Any]:
    """The ``--json`` report."""
    return {
        "ok": outcome.ok,
        "exit_code": outcome.exit_code,
        "message": outcome.message,
        "package_file": str(outcome.package),
        "sender_fingerprint": outcome.sender_fingerprint,
        "detached_signature_checked": outcome.signature_checked,
        "checks": [
            {"name": c.name, "ok": c.ok, "skipped": c.skipped, "detail": c.detail}
            for c in outcome.checks
        ],
        "package": _summary(outcome.manifest) if outcome.manifest is not None else None,
        "timestamp": outcome.timestamp,
        "extracted_to": str(outcome.extracted_to) if outcome.extracted_to else None,
    }


def _summary(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What the JSON report says about the package (the manifest, less the custody detail)."""
    return {
        "code": manifest["package"]["code"],
        "created_at": manifest["package"]["created_at"],
        "authority": manifest["authority"],
        "rfa": manifest["rfa"],
        "decision": manifest["decision"],
        "signer_fingerprint": manifest["signing_key_fingerprint"],
        "recipient_fingerprints": manifest["recipient_fingerprints"],
        "replaces": manifest.get("replaces"),
        "items": [
            {
                "code": item["code"],
                "title": item["title"],
                "kind": item["kind"],
                "provider": item["provider"],
                "rendition": item["rendition"],
                "path": item["path"],
                "sha256": item["sha256"],
                "size": item["size"],
                "redaction_count": sum(r["count"] for r in item["redactions"]),
                "redactions": item["redactions"],
            }
            for item in manifest["items"]
        ],
        "documents": [
            {"title": doc["title"], "path": doc["path"], "sha256": doc["sha256"]}
            for doc in manifest["documents"]
        ],
    }


def _redaction_text(redactions: Sequence[Mapping[str, Any]]) -> str:
    if not redactions:
        return "no redactions"
    total = sum(int(r["count"]) for r in redactions)
    parts = ", ".join(
        f"{r['count']} {r['kind'].replace('_', ' ')} ({r['reason']})" for r in redactions
    )
    return f"{total} redaction{'s' if total != 1 else ''}: {parts}"


def render_text(outcome: Outcome) -> str:
    """The report a person reads: what the package is, what was checked, the verdict."""
    lines = [f"Package file   {outcome.package}"]
    manifest = outcome.manifest
    if manifest is not None:
        authority = manifest["authority"]
        rfa = manifest["rfa"]
        decision = manifest["decision"]
        package = manifest["package"]
        lines += [
            f"Package        {package['code']} (made {package['created_at']})",
            f"Addressed to   {authority['name']} ({authority['code']}, {authority['country']})",
            f"Request        {rfa['reference']} (your reference: {rfa['authority_reference']})",
            f"Decision       {decision['id']} of {decision['decided_at']}, policy "
            f"{decision['policy_id']} revision {decision['policy_revision'][:12]}",
            f"Signed by      {format_fingerprint(manifest['signing_key_fingerprint'])}",
        ]
        if outcome.timestamp is not None:
            stamp = outcome.timestamp
            lines.append(f"Time-stamped   {stamp['time']} by {stamp['tsa']} (RFC 3161)")
        if "replaces" in manifest:
            left_out = manifest["replaces"]["items_left_out"]
            without = f", without {', '.join(left_out)}" if left_out else ""
            lines.append(f"Replaces       {manifest['replaces']['code']}{without}")
    lines += ["", "Checks"]
    for check in outcome.checks:
        mark = "skipped" if check.skipped else ("ok" if check.ok else "FAILED")
        lines.append(f"  [{mark:>7}] {check.name.replace('_', ' ')}: {check.detail}")
    if manifest is not None:
        lines += ["", f"Items ({len(manifest['items'])})"]
        for item in manifest["items"]:
            rendition = "redacted rendition" if item["rendition"] == "redacted" else "as is"
            lines.append(f"  {item['code']}  {item['title']}")
            lines.append(
                f"      {rendition}, {_redaction_text(item['redactions'])}; provider: "
                f"{item['provider']}"
            )
            lines.append(f"      {item['path']}  sha256 {item['sha256']}")
        if manifest["documents"]:
            lines += ["", "Documents"]
            for doc in manifest["documents"]:
                lines.append(f"  {doc['title']}: {doc['path']}")
        if outcome.extracted_to is not None:
            lines += ["", f"The verified bag is in {outcome.extracted_to}"]
    verdict = outcome.message if outcome.ok else f"NOT VERIFIED: {outcome.message}"
    lines += ["", verdict, ""]
    return "\n".join(lines)
