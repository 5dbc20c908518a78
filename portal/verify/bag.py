"""The BagIt bag, checked with Library of Congress ``bagit``: complete, every checksum right."""

from __future__ import annotations

from pathlib import Path

import bagit

from portal.verify.results import EXIT_BAG_INVALID, Passed, VerifyFailed, first_few

__all__ = ["validate_bag"]


def validate_bag(bag_dir: Path) -> Passed[bagit.Bag]:
    """``bag_dir`` is a complete bag with a SHA-256 manifest that every payload file matches."""
    try:
        bag = bagit.Bag(str(bag_dir))
        if "sha256" not in bag.algorithms:
            raise VerifyFailed(EXIT_BAG_INVALID, "the bag has no SHA-256 manifest")
        bag.validate(processes=1)
    except bagit.BagValidationError as exc:
        shown = first_few([str(detail) for detail in (exc.details or [])]) or str(exc.message)
        raise VerifyFailed(EXIT_BAG_INVALID, f"the bag is not valid: {shown}") from None
    except bagit.BagError as exc:
        raise VerifyFailed(EXIT_BAG_INVALID, f"the bag is not valid: {exc}") from None
    files = len(bag.payload_entries())
    return Passed(
        bag, f"bag {bag_dir.name} is complete; {files} payload files, every SHA-256 matches"
    )
