"""The demo's fictional world as plain data: bundle records and the files they name.

The situation: armed conflict in the Oskaran Highlands of the Republic of Valdoria, a
fictional island state (its photographs carry GPS positions in the open South Pacific, where
no land is). Every person, place, unit and organisation here is invented.

Dates are fixed, relative to :data:`DEMO_EPOCH`, so the bundle is identical on every run and
a second import finds everything already there. What must still hold when the demo is run
years from now (the current assessments, standing consents) is valid until :data:`FAR_FUTURE`;
what must be expired (one fair-trial assessment, one consent) ended before the epoch.

The bundle format is described in ``docs/import-format.md``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from portal.demo import files as gen
from portal.demo.files import Box, PdfLine, PhotoSpec

DEMO_EPOCH = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
FAR_FUTURE = datetime(2036, 1, 15, 0, 0, tzinfo=UTC)
AUTHORITY_CODES = ("NWU-NL", "SPR-ES", "ECT-EV", "WJD-WR", "RCP-RV")
Record = dict[str, Any]


class DatasetError(RuntimeError):
    """The demo dataset cannot be built (e.g. the example keys are missing)."""


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _days(n: int) -> datetime:
    """``n`` days after the epoch (negative: before)."""
    return DEMO_EPOCH + timedelta(days=n)


@dataclass
class Dataset:
    """Bundle records in import order and the files they name (relative path -> bytes)."""

    records: list[Record] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    # Marks arrive pending (imports cannot confirm); these (item, mark) the demo's second
    # legal officer confirms after the import, as a reviewer would.
    confirmed_marks: list[tuple[str, str]] = field(default_factory=list)
    # Requests (codes) whose candidates a legal officer asks their providers' consent for
    # after the import (a bundle carries no consent requests), so those wait in an inbox.
    consent_asked_for: list[str] = field(default_factory=list)

    def bundle_lines(self) -> list[str]:
        return [json.dumps(record, sort_keys=True, ensure_ascii=False) for record in self.records]

    def write_files(self, directory: Path) -> None:
        for name, data in self.files.items():
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def codes(self, record_type: str) -> list[str]:
        return [r["code"] for r in self.records if r["type"] == record_type]

    def of_type(self, record_type: str) -> list[Record]:
        return [r for r in self.records if r["type"] == record_type]


class _World:
    """Accumulates records and files; small helpers keep the world description readable."""

    def __init__(self) -> None:
        self.data = Dataset()
        self.texts: dict[str, str] = {}  # item code -> text, for span marks

    def add(self, record_type: str, **fields: Any) -> Record:
        record = {"type": record_type, **{k: v for k, v in fields.items() if v is not None}}
        self.data.records.append(record)
        return record

    def item(
        self,
        code: str,
        provider: str,
        kind: str,
        title: str,
        *,
        filename: str,
        media_type: str,
        data: bytes,
        collected: date,
        place: str,
        sensitivity: str,
        description: str = "",
        tags: Sequence[str] = (),
        persons: Sequence[str] = (),
        cleared_as_is: bool = False,
    ) -> None:
        path = f"items/{code}/{filename}"
        self.data.files[path] = data
        self.add(
            "item",
            code=code,
            provider=provider,
            kind=kind,
            title=title,
            description=description,
            media_type=media_type,
            file=path,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            collected_at=collected.isoformat(),
            place=place,
            sensitivity=sensitivity,
            tags=list(tags),
            persons=sorted(persons),
            cleared_as_is=cleared_as_is,
        )

    def mark(
        self,
        item: str,
        code: str,
        kind: str,
        reason: str,
        *,
        applies: str = "always",
        review: str = "confirmed",
        person: str | None = None,
        term: str | None = None,
        span: tuple[int, int] | None = None,
        page: int | None = None,
        box: Box | None = None,
    ) -> None:
        self.add(
            "redaction_mark",
            item=item,
            code=code,
            kind=kind,
            term=term,
            span=list(span) if span else None,
            page=page,
            box=[box.x0, box.y0, box.x1, box.y1] if box else None,
            reason=reason,
            applies=applies,
            person=person,
        )
        if review == "confirmed":
            self.data.confirmed_marks.append((item, code))

    def span_of(self, item: str, fragment: str) -> tuple[int, int]:
        """Character offsets of ``fragment`` in the item's text (it must occur exactly once)."""
        text = self.texts[item]
        start = text.index(fragment)
        if text.find(fragment, start + 1) != -1:
            raise ValueError(f"{fragment!r} occurs more than once in {item}")
        return start, start + len(fragment)


# --- the people named in the material -------------------------------------------------------

# code -> (pseudonym, role, at risk, the fictional name used in the material)
PERSONS: dict[str, tuple[str, str, bool, str]] = {
    "PER-V01": ("Witness V-01", "witness", True, "Amira Tessaly"),
    "PER-V02": ("Witness V-02", "witness", True, "Dorin Kalvek"),
    "PER-V03": ("Victim V-03", "victim", True, "Ilse Moravan"),
    "PER-V04": ("Witness V-04", "witness", False, "Petar Oskanen"),
    "PER-V05": ("Victim V-05", "victim", True, "Lenka Varadi"),
    "PER-S06": ("Source S-06", "source", True, "Teodor Brask"),
    "PER-V07": ("Witness V-07", "witness", True, "Mirela Quenzi"),
    "PER-X01": ("Suspect X-01", "suspect", False, "Radek Vorn"),
}


def _name(person: str) -> str:
    return PERSONS[person][3]


# Protected identifiers of the persons at risk (sealed on import; shown to legal officers
# only), all fictional: the names used in the material, a fuller legal name of which the
# material has only the first two words (a partial name), spellings in Arabic and Burmese
# script, the phone number a statement gives (no country has the code +999) and a home
# village.
IDENTIFIERS: tuple[tuple[str, str, str], ...] = (
    ("PER-V01", "name", _name("PER-V01")),
    ("PER-V02", "name", _name("PER-V02")),
    ("PER-V02", "transliteration", "دورين كالفيك"),
    ("PER-V03", "name", f"{_name('PER-V03')} Tarkes"),
    ("PER-V03", "phone", "+999 555 0142"),
    ("PER-V05", "name", _name("PER-V05")),
    ("PER-V05", "transliteration", "လန်ကာ ဗာရာဒီ"),
    ("PER-S06", "name", _name("PER-S06")),
    ("PER-S06", "place", "Upper Vessaly farmstead"),
    ("PER-V07", "name", _name("PER-V07")),
)


def _identifiers(world: _World) -> None:
    for person, kind, value in IDENTIFIERS:
        world.add("protected_identifier", person=person, kind=kind, value=value)


# --- statements (plain text) ----------------------------------------------------------------

_STATEMENTS: list[tuple[str, str, str, date, str, str, list[str], str]] = [
    # code, provider, title, collected, place, sensitivity, persons, text
    (
        "ITM-0001",
        "PRV-HDC",
        "Statement of Witness V-01 on the shelling of Marrovel market",
        date(2023, 6, 20),
        "Marrovel",
        "very_high",
        ["PER-V01", "PER-V02"],
        """WITNESS STATEMENT - Witness V-01
Taken by: Highland Documentation Centre, field team 2
Date of interview: 20 June 2023
Place of interview: safe location outside Marrovel

I, Amira Tessaly, make this statement freely.
Home address: 14 Lantern Row, Marrovel, Oskaran Highlands.

On the morning of 12 June 2023 I was selling vegetables at the covered market of
Marrovel. At about 09:40 I heard a whistling sound and the first shell landed near the
fountain at the north end of the market. Two more shells followed within a minute.
There were no soldiers or military vehicles in the market that morning.

My neighbour Dorin Kalvek helped me carry two injured children to the pharmacy on
Cooper Street. I saw at least eleven people lying on the ground.

After the attack, men in the grey uniforms of the Highland Guard came to my house and
told me not to speak to anyone about what I had seen. I am afraid for my family.

Signed: Amira Tessaly (Witness V-01)""",
    ),
    (
        "ITM-0002",
        "PRV-HDC",
        "Statement of Witness V-02 on detention at Ostrik school",
        date(2023, 8, 3),
        "Ostrik",
        "very_high",
        ["PER-V02", "PER-X01"],
        """WITNESS STATEMENT - Witness V-02
Taken by: Highland Documentation Centre, field team 1
Date of interview: 3 August 2023

My name is Dorin Kalvek. I was arrested at a checkpoint near Ostrik on 2 July 2023
and held for nineteen days in the primary school of Ostrik, which the 14th Internal
Security Battalion used as a detention site.

About forty men were held in two classrooms. We were interrogated at night. The officer
in charge introduced himself as Colonel Radek Vorn. I heard him order the guards to beat
a detainee who had asked for water.

I was released without charge on 21 July 2023. I was told that my family would be
harmed if I spoke about the school.

Signed: Dorin Kalvek (Witness V-02)""",
    ),
    (
        "ITM-0003",
        "PRV-HDC",
        "Statement of Victim V-03 on the disappearance of her brother",
        date(2023, 9, 14),
        "Kallavar",
        "very_high",
        ["PER-V03"],
        """VICTIM STATEMENT - Victim V-03
Taken by: Highland Documentation Centre, field team 2
Date of interview: 14 September 2023

I am Ilse Moravan. My brother, a schoolteacher, was taken from our house in Kallavar
on the night of 28 August 2023 by six armed men who did not identify themselves.
They drove away in two pickup trucks without number plates.

I went to the police station and to the battalion headquarters in Kallavar. Both denied
that he had been arrested. Nobody has told us where he is.

A relative of a guard told me he was seen at the Ostrik school at the beginning of
September. I can be reached through the Centre on +999 555 0142.

Signed: Ilse Moravan (Victim V-03)""",
    ),
    (
        "ITM-0004",
        "PRV-HDC",
        "Statement of Witness V-04, ambulance driver",
        date(2023, 6, 22),
        "Marrovel",
        "medium",
        ["PER-V04"],
        """WITNESS STATEMENT - Witness V-04
Taken by: Highland Documentation Centre, field team 2
Date of interview: 22 June 2023

My name is Petar Oskanen. I drive an ambulance for the Marrovel district hospital.
On 12 June 2023 I was called to the covered market at 09:52. When I arrived I saw
three impact sites inside the market hall. I transported nine wounded civilians in
four trips. I did not see any weapons or soldiers in or near the market.

I agree to my name being used.

Signed: Petar Oskanen (Witness V-04)""",
    ),
    (
        "ITM-0005",
        "PRV-REP",
        "Statement of Witness V-07 on events at checkpoint 7",
        date(2023, 10, 5),
        "Brenna Vale",
        "very_high",
        ["PER-V07"],
        """WITNESS STATEMENT - Witness V-07
Provided through the witness's legal representative
Date of interview: 5 October 2023

I am Mirela Quenzi. On 19 September 2023 I was stopped at checkpoint 7 on the road
from Brenna Vale to Kallavar together with four other women. Soldiers separated us
from the men and took us to a tent behind the checkpoint, where we were held until
the evening and subjected to abuse.

One soldier wore a patch of the 14th Internal Security Battalion. Another was called
"sergeant" by the others.

I now live at a shelter, room 12, Northgate Road. I wish my identity to be protected.

Signed: Mirela Quenzi (Witness V-07)""",
    ),
    (
        "ITM-0006",
        "PRV-REP",
        "Supplementary statement of Witness V-07",
        date(2023, 11, 2),
        "Brenna Vale",
        "very_high",
        ["PER-V07"],
        """SUPPLEMENTARY STATEMENT - Witness V-07
Provided through the witness's legal representative
Date of interview: 2 November 2023

I, Mirela Quenzi, add the following to my statement of 5 October 2023.

I have since recognised the sergeant from checkpoint 7 in a photograph shown to me by
my representative. I also remember that the tent had a red cross painted on it, although
no medical staff were present.

Signed: Mirela Quenzi (Witness V-07)""",
    ),
    (
        "ITM-0007",
        "PRV-UNM",
        "Interview notes: displaced families at Kallavar camp",
        date(2023, 9, 30),
        "Kallavar",
        "high",
        ["PER-V05"],
        """INTERVIEW NOTES - UN Monitoring Mission in Valdoria, human rights unit
Interview reference: UNMV-HR-2023-0412
Date: 30 September 2023, Kallavar displacement camp

The interviewee, Lenka Varadi, arrived at the camp on 24 September 2023 with her three
children after her village in the upper Tessin valley was burned. She stated that
soldiers arrived at dawn, ordered everyone out and set fire to the houses. Her husband
was detained and has not been seen since.

Monitoring officer's note: the interviewee fears reprisals against relatives who remain
in the valley. Do not disclose her identity.""",
    ),
    (
        "ITM-0008",
        "PRV-UNM",
        "Interview notes: source inside the 14th Internal Security Battalion",
        date(2023, 12, 8),
        "Kallavar",
        "very_high",
        ["PER-S06", "PER-X01"],
        """INTERVIEW NOTES - UN Monitoring Mission in Valdoria, human rights unit
Interview reference: UNMV-HR-2023-0587
Date: 8 December 2023

The source, Teodor Brask, served as a clerk at the battalion headquarters in Kallavar
until November 2023. He stated that lists of detainees held at the Ostrik school were
typed at headquarters every week and signed by Colonel Radek Vorn. Copies were sent to
the regional command.

The source is still in contact with serving members of the battalion and is at grave
risk if identified.""",
    ),
    (
        "ITM-0009",
        "PRV-HDC",
        "Statement of a nurse at Marrovel district hospital",
        date(2023, 6, 25),
        "Marrovel",
        "medium",
        [],
        """WITNESS STATEMENT - nurse, Marrovel district hospital
Taken by: Highland Documentation Centre, field team 2
Date of interview: 25 June 2023

On 12 June 2023 the hospital received twenty-three wounded from the covered market,
among them seven children. Most had shrapnel wounds to the legs and abdomen. Four died
during the day. The hospital ran out of blood for transfusions by the afternoon.

The witness asked not to be named; no identifying details are recorded here.""",
    ),
    (
        "ITM-0010",
        "PRV-UNM",
        "Interview notes: destruction of the Tessin Ford bridge",
        date(2023, 7, 18),
        "Tessin Ford",
        "low",
        [],
        """INTERVIEW NOTES - UN Monitoring Mission in Valdoria, human rights unit
Interview reference: UNMV-HR-2023-0233
Date: 18 July 2023

Three residents of Tessin Ford, interviewed together, stated that the road bridge was
blown up on the night of 15 July 2023, cutting the only route for humanitarian convoys
to the upper valley. None of the residents saw who placed the charges.""",
    ),
    (
        "ITM-0011",
        "PRV-HDC",
        "Statement of Victim V-05 on the burning of her village",
        date(2023, 10, 12),
        "Tessin valley",
        "very_high",
        ["PER-V05"],
        """VICTIM STATEMENT - Victim V-05
Taken by: Highland Documentation Centre, field team 3
Date of interview: 12 October 2023

My name is Lenka Varadi. I lived in the upper Tessin valley until 23 September 2023.
That morning soldiers burned about thirty houses. My husband was taken away in a truck
with other men of the village. I have since heard that some of them were held at the
Ostrik school.

Signed: Lenka Varadi (Victim V-05)""",
    ),
    (
        "ITM-0012",
        "PRV-REP",
        "Statement of Witness V-07 on threats received",
        date(2024, 1, 20),
        "Brenna Vale",
        "very_high",
        ["PER-V07"],
        """WITNESS STATEMENT - Witness V-07
Provided through the witness's legal representative
Date of interview: 20 January 2024

I, Mirela Quenzi, state that since December 2023 my mother has received three visits
from men who asked where I am living. One of them said that people who talk to
foreigners disappear.

Signed: Mirela Quenzi (Witness V-07)""",
    ),
]


def _statements(world: _World) -> None:
    for code, provider, title, collected, place, sensitivity, persons, text in _STATEMENTS:
        data = gen.text_file(text)
        world.texts[code] = data.decode("utf-8")
        world.item(
            code,
            provider,
            "witness_statement",
            title,
            filename=f"{code.lower()}-statement.txt",
            media_type="text/plain",
            data=data,
            collected=collected,
            place=place,
            sensitivity=sensitivity,
            tags=["statement", place.lower().replace(" ", "-")],
            persons=persons,
        )
    protect = "Identifies a witness or victim at risk"
    # Names of people at risk, protected wherever they appear.
    world.mark("ITM-0001", "M1", "term", protect, person="PER-V01", term=_name("PER-V01"))
    world.mark(
        "ITM-0001",
        "M2",
        "term",
        "Names a second witness; protected only where the authority cannot protect him",
        applies="without_protection",
        person="PER-V02",
        term=_name("PER-V02"),
    )
    world.mark(
        "ITM-0001",
        "M3",
        "text_span",
        "Home address of a witness at risk",
        span=world.span_of("ITM-0001", "14 Lantern Row, Marrovel"),
        person="PER-V01",
    )
    world.mark("ITM-0002", "M1", "term", protect, person="PER-V02", term=_name("PER-V02"))
    world.mark(
        "ITM-0003",
        "M1",
        "term",
        protect,
        applies="without_protection",
        person="PER-V03",
        term=_name("PER-V03"),
    )
    world.mark(
        "ITM-0003",
        "M2",
        "text_span",
        "Contact number that leads to the victim",
        span=world.span_of("ITM-0003", "+999 555 0142"),
        person="PER-V03",
    )
    world.mark(
        "ITM-0003",
        "M3",
        "term",
        "May identify the victim's brother (occupation and village); awaiting review",
        review="pending",
        term="a schoolteacher",
    )
    for item in ("ITM-0005", "ITM-0006", "ITM-0012"):
        world.mark(item, "M1", "term", protect, person="PER-V07", term=_name("PER-V07"))
    world.mark(
        "ITM-0005",
        "M2",
        "text_span",
        "Current whereabouts of a witness at risk",
        span=world.span_of("ITM-0005", "room 12, Northgate Road"),
        person="PER-V07",
    )
    world.mark(
        "ITM-0007",
        "M1",
        "term",
        protect,
        applies="without_protection",
        person="PER-V05",
        term=_name("PER-V05"),
    )
    world.mark(
        "ITM-0008",
        "M1",
        "term",
        "Identifies a confidential source",
        person="PER-S06",
        term=_name("PER-S06"),
    )
    world.mark("ITM-0011", "M1", "term", protect, person="PER-V05", term=_name("PER-V05"))


# --- documents (PDF with a text layer) ----------------------------------------------------------


def _pdf_item(
    world: _World,
    code: str,
    provider: str,
    title: str,
    *,
    author: str,
    collected: date,
    place: str,
    sensitivity: str,
    lines: Sequence[PdfLine],
    persons: Sequence[str] = (),
    tags: Sequence[str] = (),
) -> gen.RenderedPdf:
    created = datetime(collected.year, collected.month, collected.day, 16, 0, tzinfo=UTC)
    rendered = gen.pdf_document(
        title=title,
        author=author,
        created=created,
        pages=[[PdfLine(title, bold=True), *lines]],
    )
    world.item(
        code,
        provider,
        "document",
        title,
        filename=f"{code.lower()}.pdf",
        media_type="application/pdf",
        data=rendered.data,
        collected=collected,
        place=place,
        sensitivity=sensitivity,
        persons=persons,
        tags=["document", *tags],
    )
    return rendered


def _documents(world: _World) -> None:
    protect = "Identifies a witness or victim at risk"
    hospital = _pdf_item(
        world,
        "ITM-0013",
        "PRV-HDC",
        "Marrovel district hospital: admissions register, extract",
        author="Records office, Marrovel district hospital",
        collected=date(2023, 9, 2),
        place="Marrovel",
        sensitivity="high",
        persons=["PER-V03"],
        tags=["medical"],
        lines=[
            PdfLine("Extract certified by the records office for the period 29-31 August 2023."),
            PdfLine("Admission 2023/08/1187 - patient: Ilse Moravan", anchor="patient"),
            PdfLine(
                "Admitted 29 August 2023 with bruising to the arms and a fractured wrist, "
                "reported as sustained when armed men forced entry to the family home in "
                "Kallavar. Discharged 31 August 2023."
            ),
            PdfLine("Admission 2023/08/1188 - patient: anonymous (minor)"),
            PdfLine("Admitted 29 August 2023 with smoke inhalation. Discharged the same day."),
        ],
    )
    page, box = hospital.anchors["patient"]
    world.mark("ITM-0013", "M1", "term", protect, person="PER-V03", term=_name("PER-V03"))
    world.mark(
        "ITM-0013",
        "M2",
        "pdf_box",
        "Register line naming a victim at risk",
        page=page,
        box=box,
        person="PER-V03",
    )

    _pdf_item(
        world,
        "ITM-0014",
        "PRV-HDC",
        "Order on the use of Ostrik primary school as a holding facility",
        author="14th Internal Security Battalion (copy)",
        collected=date(2023, 7, 1),
        place="Ostrik",
        sensitivity="high",
        persons=["PER-X01"],
        tags=["detention", "order"],
        lines=[
            PdfLine("Copy obtained by the Highland Documentation Centre. Translation."),
            PdfLine(
                "1. With effect from 1 July 2023 the primary school of Ostrik is placed at "
                "the disposal of the battalion as a temporary holding facility."
            ),
            PdfLine("2. Persons detained at checkpoints in sectors 3 and 4 are to be held there."),
            PdfLine("3. Weekly lists of persons held are to be sent to headquarters."),
            PdfLine("Signed: Colonel Radek Vorn, commanding officer", anchor="signature"),
        ],
    )
    for code, day_, incidents in (
        ("ITM-0015", date(2023, 6, 12), "Shelling of Marrovel covered market, 09:40."),
        ("ITM-0016", date(2023, 6, 13), "Second day of displacement from Marrovel."),
    ):
        _pdf_item(
            world,
            code,
            "PRV-UNM",
            f"Mission daily situation report, {day_.isoformat()}",
            author="UN Monitoring Mission in Valdoria, operations centre",
            collected=day_,
            place="Oskaran Highlands",
            sensitivity="medium",
            tags=["sitrep"],
            lines=[
                PdfLine("Distribution: mission leadership; human rights unit."),
                PdfLine(f"Main incidents: {incidents}"),
                PdfLine(
                    "Movement: patrols to Marrovel and Tessin Ford completed; access to the "
                    "upper Tessin valley denied at checkpoint 7."
                ),
                PdfLine("Humanitarian: convoy to Kallavar camp delayed by 6 hours."),
            ],
        )
    _pdf_item(
        world,
        "ITM-0017",
        "PRV-UNM",
        "Note on denial of access to the upper Tessin valley",
        author="UN Monitoring Mission in Valdoria, head of mission",
        collected=date(2023, 9, 26),
        place="Tessin valley",
        sensitivity="medium",
        tags=["access"],
        lines=[
            PdfLine(
                "The Mission regrets that its patrols were refused passage at checkpoint 7 on "
                "24, 25 and 26 September 2023, while smoke was visible over the upper valley."
            ),
            PdfLine("The Mission requests immediate and unimpeded access."),
        ],
    )
    missing = _pdf_item(
        world,
        "ITM-0018",
        "PRV-HDC",
        "List of persons reported missing in Marrovel district, June to September 2023",
        author="Highland Documentation Centre",
        collected=date(2023, 10, 1),
        place="Marrovel",
        sensitivity="very_high",
        persons=["PER-V01"],
        tags=["missing-persons"],
        lines=[
            PdfLine("Compiled from reports received by the Centre. Entries 1 to 4 of 61."),
            PdfLine("1. Reported by Amira Tessaly: her husband, taken on 14 June 2023.", "entry1"),
            PdfLine("2. Reported by a neighbour: a shopkeeper of Cooper Street, 2 July 2023."),
            PdfLine("3. Reported anonymously: two brothers, farmers, 9 August 2023."),
            PdfLine("4. Reported by the family: a schoolteacher of Kallavar, 28 August 2023."),
        ],
    )
    page, box = missing.anchors["entry1"]
    world.mark("ITM-0018", "M1", "term", protect, person="PER-V01", term=_name("PER-V01"))
    world.mark(
        "ITM-0018",
        "M2",
        "pdf_box",
        "Entry naming the reporting witness; box drawn by the first reviewer",
        review="pending",
        page=page,
        box=box,
        person="PER-V01",
    )
    certificate = _pdf_item(
        world,
        "ITM-0019",
        "PRV-REP",
        "Medical certificate concerning Witness V-07",
        author="Brenna Vale health centre",
        collected=date(2023, 9, 22),
        place="Brenna Vale",
        sensitivity="very_high",
        persons=["PER-V07"],
        tags=["medical"],
        lines=[
            PdfLine("Patient: Mirela Quenzi", anchor="patient"),
            PdfLine(
                "Examined on 21 September 2023. Findings consistent with the account given "
                "by the patient of events on 19 September 2023."
            ),
            PdfLine("Signed: duty physician (name withheld by the provider)."),
        ],
    )
    page, box = certificate.anchors["patient"]
    world.mark("ITM-0019", "M1", "term", protect, person="PER-V07", term=_name("PER-V07"))
    world.mark(
        "ITM-0019",
        "M2",
        "pdf_box",
        "Patient line of a witness at risk",
        page=page,
        box=box,
        person="PER-V07",
    )
    _pdf_item(
        world,
        "ITM-0020",
        "PRV-UNM",
        "Transcription of the checkpoint 7 vehicle log, September 2023",
        author="UN Monitoring Mission in Valdoria, human rights unit",
        collected=date(2023, 10, 20),
        place="Brenna Vale",
        sensitivity="medium",
        tags=["checkpoint"],
        lines=[
            PdfLine("19 Sep 2023 07:10 - minibus, 9 passengers, held 11 hours."),
            PdfLine("19 Sep 2023 08:25 - truck, 2 passengers, turned back."),
            PdfLine("20 Sep 2023 06:55 - pickup without plates, battalion, passed."),
        ],
    )


# --- photographs (JPEG with EXIF, GPS in the open ocean) ----------------------------------------

_PHOTOS: list[tuple[str, str, str, str, date, float, float, int, str | None, int]] = [
    # code, provider, title, place, taken, latitude, longitude, orientation, sign, figures
    (
        "ITM-0021",
        "PRV-HDC",
        "Marrovel market after the shelling",
        "Marrovel",
        date(2023, 6, 12),
        -47.9123,
        -126.4551,
        1,
        "Kalvek Pharmacy",
        3,
    ),
    (
        "ITM-0022",
        "PRV-HDC",
        "Ostrik primary school, east wing",
        "Ostrik",
        date(2023, 7, 25),
        -48.2210,
        -125.9874,
        6,
        "Ostrik School",
        0,
    ),
    (
        "ITM-0023",
        "PRV-HDC",
        "Crater on the Marrovel ring road",
        "Marrovel",
        date(2023, 6, 14),
        -47.9301,
        -126.4402,
        1,
        None,
        0,
    ),
    (
        "ITM-0024",
        "PRV-UNM",
        "Tessin Ford bridge, destroyed span",
        "Tessin Ford",
        date(2023, 7, 17),
        -48.0532,
        -126.1107,
        1,
        None,
        0,
    ),
    (
        "ITM-0025",
        "PRV-UNM",
        "Kallavar displacement camp, registration queue",
        "Kallavar",
        date(2023, 9, 29),
        -48.1776,
        -126.2230,
        1,
        "Registration",
        4,
    ),
    (
        "ITM-0026",
        "PRV-UNM",
        "Burned vehicles, upper Tessin valley road",
        "Tessin valley",
        date(2023, 9, 27),
        -48.0011,
        -126.0093,
        1,
        None,
        0,
    ),
    (
        "ITM-0027",
        "PRV-REP",
        "Checkpoint 7 on the Brenna Vale road",
        "Brenna Vale",
        date(2023, 9, 30),
        -48.3105,
        -126.5312,
        1,
        "Checkpoint 7",
        2,
    ),
    (
        "ITM-0028",
        "PRV-HDC",
        "Site marker near Ostrik, suspected burial site",
        "Ostrik",
        date(2023, 11, 5),
        -48.2377,
        -125.9702,
        1,
        "Site 4",
        0,
    ),
]


def _photos(world: _World) -> None:
    boxes: dict[str, Box] = {}
    for index, row in enumerate(_PHOTOS):
        code, provider, title, place, taken, lat, lon, orientation, sign, figures = row
        photo = gen.jpeg_photo(
            PhotoSpec(
                label=f"{place} - {taken.isoformat()}",
                seed=1000 + index,
                latitude=lat,
                longitude=lon,
                taken=datetime(taken.year, taken.month, taken.day, 10, 30 + index),
                orientation=orientation,
                sign_text=sign,
                figures=figures,
                model="FC-200" if index % 2 else "FC-300 Rugged",
            )
        )
        if photo.sign_box is not None:
            boxes[code] = photo.sign_box
        world.item(
            code,
            provider,
            "photo",
            title,
            filename=f"{code.lower()}.jpg",
            media_type="image/jpeg",
            data=photo.data,
            collected=taken,
            place=place,
            sensitivity="high" if code in ("ITM-0021", "ITM-0025") else "medium",
            tags=["photo", place.lower().replace(" ", "-")],
            persons=["PER-V02"] if code == "ITM-0021" else [],
        )
    world.mark(
        "ITM-0021",
        "M1",
        "image_box",
        "Shop sign bearing the family name of a witness at risk",
        applies="without_protection",
        box=boxes["ITM-0021"],
        person="PER-V02",
    )
    world.mark(
        "ITM-0025",
        "M1",
        "image_box",
        "Faces of displaced persons in the registration queue",
        box=Box(x0=0.1, y0=0.55, x1=0.6, y1=0.85),
    )


# --- scans -----------------------------------------------------------------------------------

#: The fictional trader named only in the pixels of the scanned statement ITM-0034 (no mark:
#: a legal officer finds the name on the review page and marks it).
SCANNED_NAME = "Talen Brask"


def _scans(world: _World) -> None:
    taken = date(2023, 6, 20)
    world.item(
        "ITM-0034",
        "PRV-HDC",
        "witness_statement",
        "Scanned statement of a market trader, Marrovel",
        filename="itm-0034-scan.pdf",
        media_type="application/pdf",
        data=gen.scanned_pdf(
            [
                [
                    "Statement taken at the Highland Documentation Centre, 20 June 2023.",
                    f"I, {SCANNED_NAME}, sold vegetables at the covered market of Marrovel.",
                    "On 12 June 2023 at about 09:40 the first shell struck the north entrance.",
                    "I saw the roof fall on the stalls of the spice sellers.",
                ],
                [
                    "The trader can be reached through his cousin:",
                    "telephone +999 555 0177, Lantern Row, Marrovel.",
                    "He asked that his contact details are not passed on.",
                ],
            ],
            created=datetime(taken.year, taken.month, taken.day, 15, 0, tzinfo=UTC),
        ),
        collected=taken,
        place="Marrovel",
        sensitivity="high",
        tags=["statement", "scan", "marrovel"],
    )


# --- analytical reports (WeasyPrint) ---------------------------------------------------------


def _reports(world: _World) -> None:
    markets = gen.html_report(
        title="Pattern analysis: attacks on markets in the Oskaran Highlands, 2023",
        author="UN Monitoring Mission in Valdoria, analysis cell",
        created=datetime(2023, 12, 15, 12, 0, tzinfo=UTC),
        html_body=(
            "<h1>Pattern analysis: attacks on markets in the Oskaran Highlands, 2023</h1>"
            "<p>This report examines four incidents in which markets were struck by indirect "
            "fire between June and October 2023. In each case the attack took place between "
            "09:00 and 11:00, when markets are busiest, and no military objective was "
            "identified within 500 metres.</p>"
            "<table><tr><th>Date</th><th>Place</th><th>Killed</th><th>Wounded</th></tr>"
            "<tr><td>12 June 2023</td><td>Marrovel</td><td>11</td><td>23</td></tr>"
            "<tr><td>30 July 2023</td><td>Kallavar</td><td>4</td><td>15</td></tr>"
            "<tr><td>2 September 2023</td><td>Ostrik</td><td>2</td><td>9</td></tr>"
            "<tr><td>14 October 2023</td><td>Brenna Vale</td><td>6</td><td>12</td></tr>"
            "</table>"
            "<p>The consistency of timing and the absence of military objectives suggest "
            "that the markets themselves were targeted.</p>"
        ),
    )
    world.item(
        "ITM-0029",
        "PRV-UNM",
        "analytical_report",
        "Pattern analysis: attacks on markets in the Oskaran Highlands, 2023",
        filename="itm-0029-market-attacks.pdf",
        media_type="application/pdf",
        data=markets,
        collected=date(2023, 12, 15),
        place="Oskaran Highlands",
        sensitivity="medium",
        tags=["analysis", "markets"],
    )
    # The second report is made with ReportLab: one WeasyPrint rendering shows the path,
    # and each costs about a second (font subsetting).
    title = "Detention sites of the 14th Internal Security Battalion"
    detention = gen.pdf_document(
        title=title,
        author="Highland Documentation Centre, research unit",
        created=datetime(2024, 2, 1, 12, 0, tzinfo=UTC),
        pages=[
            [
                PdfLine(title, bold=True),
                PdfLine(
                    "Based on 37 statements collected between July 2023 and January 2024, this "
                    "report identifies three places used to hold persons detained at "
                    "checkpoints: the primary school of Ostrik, a warehouse at Kallavar station "
                    "and a tent camp behind checkpoint 7."
                ),
                PdfLine("Ostrik school: about 40 detainees at a time, July to October 2023."),
                PdfLine("Kallavar warehouse: transit site, detainees held one to three days."),
                PdfLine("Checkpoint 7 tents: women held for up to a day."),
            ],
            [
                PdfLine("Method", bold=True),
                PdfLine(
                    "Accounts were cross-checked against satellite imagery and the Mission's "
                    "situation reports. Former detainees are identified by pseudonym only."
                ),
            ],
        ],
    )
    world.item(
        "ITM-0030",
        "PRV-HDC",
        "analytical_report",
        title,
        filename="itm-0030-detention-sites.pdf",
        media_type="application/pdf",
        data=detention.data,
        collected=date(2024, 2, 1),
        place="Oskaran Highlands",
        sensitivity="high",
        tags=["analysis", "detention"],
    )


# --- kinds the portal cannot redact -----------------------------------------------------------


def _unredactable(world: _World) -> None:
    world.item(
        "ITM-0031",
        "PRV-HDC",
        "audio",
        "Audio recording of the interview with Witness V-02",
        filename="itm-0031-interview.wav",
        media_type="audio/wav",
        data=gen.wav_audio(seed=31),
        collected=date(2023, 8, 3),
        place="Ostrik",
        sensitivity="very_high",
        persons=["PER-V02"],
        tags=["audio", "interview"],
        description="The witness states his name at the start of the recording.",
    )
    # Audio cannot be redacted: with this mark the recording is withheld.
    world.mark(
        "ITM-0031",
        "M1",
        "term",
        "The witness states his name in the recording",
        person="PER-V02",
        term=_name("PER-V02"),
    )
    world.item(
        "ITM-0032",
        "PRV-UNM",
        "audio",
        "Intercepted radio traffic, checkpoint 7, 19 September 2023",
        filename="itm-0032-radio.wav",
        media_type="audio/wav",
        data=gen.wav_audio(seed=32, seconds=2.0),
        collected=date(2023, 9, 19),
        place="Brenna Vale",
        sensitivity="medium",
        tags=["audio", "intercept"],
        description="Reviewed by a legal officer: no one at risk is identifiable.",
        cleared_as_is=True,
    )
    notes = [
        (
            "field-notes/README.txt",
            gen.text_file("Field team 3 working notes, Tessin valley, October 2023."),
        ),
        (
            "field-notes/day1.txt",
            gen.text_file("Visited eight burned houses. Took measurements of two."),
        ),
        (
            "field-notes/day2.txt",
            gen.text_file("Spoke to three families at the camp. See statements."),
        ),
    ]
    world.item(
        "ITM-0033",
        "PRV-HDC",
        "archive",
        "Field team 3 working notes (archive)",
        filename="itm-0033-field-notes.zip",
        media_type="application/zip",
        data=gen.zip_archive(notes, modified=datetime(2023, 10, 20, 18, 0, tzinfo=UTC)),
        collected=date(2023, 10, 20),
        place="Tessin valley",
        sensitivity="medium",
        tags=["archive", "notes"],
    )


# --- the families' network: consent requests waiting in its inbox ---------------------------

#: A provider of its own whose two consent requests only the language test (tests/e2e/
#: test_arabic.py) answers, one in Arabic and one in Burmese; nothing else uses its material.
FAMILIES = "PRV-KFN"
FAMILIES_REQUESTS = ("RFA-2025-0047", "RFA-2025-0048")

_FAMILIES_ITEMS: tuple[tuple[str, str, str, date, str], ...] = (
    # code, kind, title, collected, text
    (
        "ITM-0035",
        "document",
        "Register of relatives reported missing in Kallavar district, August 2023",
        date(2023, 10, 2),
        """REGISTER OF RELATIVES REPORTED MISSING - Kallavar district
Kept by: Kallavar Families Network, registration desk
Period: 1 to 31 August 2023

Case K-01: a man aged 34, taken from his home at night on 28 August 2023.
Case K-02: a man aged 19, last seen at the Kallavar bus station on 14 August 2023.
Case K-03: a woman aged 41, taken at a checkpoint on the Ostrik road on 9 August 2023.

Families registered each case in person; names are held by the Network only.""",
    ),
    (
        "ITM-0036",
        "witness_statement",
        "Account of a mother searching detention sites for her son",
        date(2023, 11, 20),
        """ACCOUNT OF A MOTHER - Case K-02
Recorded by: Kallavar Families Network, field volunteer
Date: 20 November 2023

I went to the battalion headquarters, the Kallavar warehouse and the Ostrik school
between August and November 2023. At each place I was told that my son was not there.
At the warehouse a guard took the photograph of my son and did not give it back.""",
    ),
)


def _families(world: _World) -> None:
    for code, kind, title, collected, text in _FAMILIES_ITEMS:
        world.item(
            code,
            FAMILIES,
            kind,
            title,
            filename=f"{code.lower()}.txt",
            media_type="text/plain",
            data=gen.text_file(text),
            collected=collected,
            place="Kallavar",
            sensitivity="high",
            tags=["families", "disappearance"],
        )


# --- organisations, assessments and keys ----------------------------------------------------

_AUTHORITIES = {
    # code: (name, kind, country: ISO 3166 user-assigned codes, so no real country)
    "NWU-NL": ("Northland War Crimes Unit", "war_crimes_unit", "XN"),
    "SPR-ES": ("Southport Prosecution Service", "prosecution", "XS"),
    "ECT-EV": ("Eastvale Criminal Tribunal", "tribunal", "XE"),
    "WJD-WR": ("Westreach Justice Department", "prosecution", "XW"),
    "RCP-RV": ("Riverton Court Prosecutors", "prosecution", "XR"),
}

# code: {criterion: finding}; fair_trial of WJD-WR is expired (see _assessments).
_FINDINGS = {
    "NWU-NL": {"fair_trial": True, "death_penalty": True, "witness_protection": True},
    "SPR-ES": {"fair_trial": True, "death_penalty": False, "witness_protection": True},
    "ECT-EV": {"fair_trial": True, "death_penalty": True, "witness_protection": False},
    "WJD-WR": {"fair_trial": True, "death_penalty": True, "witness_protection": True},
    "RCP-RV": {"fair_trial": True, "death_penalty": False, "witness_protection": True},
}

_BASIS = {
    ("fair_trial", True): "Review of the jurisdiction's code of criminal procedure, recent "
    "trial monitoring reports and treaty body findings (fictional sources).",
    ("death_penalty", True): "The death penalty was abolished for all offences by the "
    "jurisdiction's constitution (fictional).",
    ("death_penalty", False): "The penal code retains the death penalty for war crimes and "
    "crimes against humanity (fictional). Material needs a written assurance per request.",
    ("witness_protection", True): "A statutory witness protection programme with relocation "
    "and identity change is in place (fictional).",
    ("witness_protection", False): "No witness protection programme; protective measures "
    "in court only (fictional).",
}


def _organisations(world: _World, keys_dir: Path, fingerprints: dict[str, str]) -> None:
    world.add(
        "provider",
        code="PRV-HDC",
        name="Highland Documentation Centre",
        kind="ngo",
        public_name="Highland Documentation Centre",
    )
    world.add(
        "provider",
        code="PRV-REP",
        name="Quill & Marsh, advocates: counsel for Witness V-07",
        kind="individual_representative",
        public_name="Legal representative of an individual witness",
    )
    world.add(
        "provider",
        code="PRV-UNM",
        name="UN Monitoring Mission in Valdoria",
        kind="un_entity",
        public_name="UN Monitoring Mission in Valdoria",
    )
    world.add(
        "provider",
        code=FAMILIES,
        name="Kallavar Families Network",
        kind="ngo",
        public_name="Kallavar Families Network",
    )
    for code, (name, kind, country) in _AUTHORITIES.items():
        world.add("authority", code=code, name=name, kind=kind, country=country)
    for person, (pseudonym, role, at_risk, _real_name) in PERSONS.items():
        world.add("person", code=person, pseudonym=pseudonym, role=role, at_risk=at_risk)
    _assessments(world)
    for code in _AUTHORITIES:
        key_path = keys_dir / f"{code}.pub.asc"
        world.data.files[f"keys/{code}.pub.asc"] = key_path.read_bytes()
        world.add(
            "recipient_key",
            authority=code,
            key_file=f"keys/{code}.pub.asc",
            fingerprint=fingerprints[code],
            verified_by="Demo legal officer",
            verified_at=_ts(_days(-60)),
            verification_method="Fingerprint read aloud by the unit's duty officer on a video "
            "call, compared digit by digit (demo)",
        )


def _assessments(world: _World) -> None:
    assessed = _days(-56)
    for authority, findings in _FINDINGS.items():
        for criterion, satisfied in findings.items():
            expired = authority == "WJD-WR" and criterion == "fair_trial"
            world.add(
                "assessment",
                code=f"{authority}-{criterion.upper().replace('_', '-')}-1",
                authority=authority,
                criterion=criterion,
                finding="satisfied" if satisfied else "not_satisfied",
                basis=_BASIS[(criterion, satisfied)]
                + (" Not renewed: the annual review is overdue." if expired else ""),
                assessed_at=_ts(_days(-411) if expired else assessed),
                valid_until=_ts(_days(-15) if expired else FAR_FUTURE),
                assessed_by="Demo legal officer",
            )


# --- consent ledger ---------------------------------------------------------------------------


def _consents(world: _World) -> None:
    def consent(code: str, provider: str, authority: str, event: str, **more: Any) -> None:
        world.add("consent", code=code, provider=provider, authority=authority, event=event, **more)

    # Standing consents (item omitted): all of the provider's items, to one authority.
    consent("CNS-0001", "PRV-HDC", "NWU-NL", "grant", recorded_at=_ts(_days(-106)))
    consent("CNS-0002", "PRV-HDC", "RCP-RV", "grant", recorded_at=_ts(_days(-45)))
    consent(
        "CNS-0003",
        "PRV-HDC",
        "ECT-EV",
        "grant",
        recorded_at=_ts(_days(-40)),
        expires_at=_ts(FAR_FUTURE),
        conditions="For the proceedings named in the request only.",
    )
    consent("CNS-0004", "PRV-UNM", "NWU-NL", "grant", recorded_at=_ts(_days(-120)))
    # An expired standing consent.
    consent(
        "CNS-0005",
        "PRV-UNM",
        "ECT-EV",
        "grant",
        recorded_at=_ts(_days(-200)),
        expires_at=_ts(_days(-15)),
    )
    # Granted for one item to one authority only.
    consent(
        "CNS-0006",
        "PRV-HDC",
        "SPR-ES",
        "grant",
        item="ITM-0001",
        recorded_at=_ts(_days(-26)),
        conditions="For use in criminal proceedings only; not to be disclosed to the media.",
    )
    consent("CNS-0007", "PRV-REP", "NWU-NL", "grant", item="ITM-0005", recorded_at=_ts(_days(-92)))
    consent("CNS-0008", "PRV-UNM", "WJD-WR", "grant", item="ITM-0015", recorded_at=_ts(_days(-70)))
    consent(
        "CNS-0009",
        "PRV-UNM",
        "SPR-ES",
        "grant",
        item="ITM-0024",
        recorded_at=_ts(_days(-20)),
        conditions="Not to be disclosed to the defence before the indictment is confirmed.",
    )
    # Declined.
    consent(
        "CNS-0010",
        "PRV-HDC",
        "SPR-ES",
        "decline",
        item="ITM-0031",
        recorded_at=_ts(_days(-25)),
        reason="The witness does not agree to the recording of his voice leaving Northland.",
    )
    consent(
        "CNS-0011",
        "PRV-REP",
        "NWU-NL",
        "decline",
        item="ITM-0012",
        recorded_at=_ts(_days(-30)),
        reason="The witness fears that sharing the account of threats would expose her mother.",
    )
    # Granted, then revoked.
    consent("CNS-0012", "PRV-REP", "NWU-NL", "grant", item="ITM-0006", recorded_at=_ts(_days(-90)))
    consent(
        "CNS-0013",
        "PRV-REP",
        "NWU-NL",
        "revoke",
        item="ITM-0006",
        recorded_at=_ts(_days(-5)),
        reason="The witness withdrew her consent after renewed threats to her family.",
    )


# --- requests for assistance ----------------------------------------------------------------

_OFFENCES = {
    "market": ["War crime of intentionally directing attacks against civilians"],
    "detention": [
        "Crime against humanity of imprisonment",
        "Crime against humanity of enforced disappearance",
        "War crime of torture",
    ],
    "checkpoint": ["War crime of sexual violence", "War crime of outrages upon personal dignity"],
}


def _step(status: str, day: int, note: str = "") -> dict[str, str]:
    return {"status": status, "at": _ts(_days(day)), "note": note}


def _rfa(
    world: _World,
    code: str,
    authority: str,
    their_reference: str,
    history: list[dict[str, str]],
    *,
    theme: str,
    summary: str,
    sought: str,
    items: Sequence[str] = (),
    messages: Sequence[tuple[int, str]] = (),
    assurances: Sequence[Record] = (),
    urgency: str = "normal",
    urgency_justification: str = "",
    deadline: date | None = None,
) -> None:
    status = history[-1]["status"]
    submitted = next((step["at"] for step in history if step["status"] == "submitted"), None)
    world.add(
        "rfa",
        code=code,
        authority=authority,
        status=status,
        their_reference=their_reference,
        legal_basis="Cooperation arrangement between the Mechanism and the authority (demo).",
        proceedings_type="investigation",
        offences=_OFFENCES[theme],
        persons_concerned="Members of the 14th Internal Security Battalion, including its "
        "commanding officer.",
        summary_of_facts=summary,
        assistance_sought=sought,
        period_from="2023-06-01",
        period_to="2023-12-31",
        places="Oskaran Highlands, Republic of Valdoria",
        urgency=urgency,
        urgency_justification=urgency_justification,
        deadline=deadline.isoformat() if deadline else None,
        confidentiality="Not to be disclosed outside the investigating team.",
        submitted_at=submitted,
        items=sorted(items),
        messages=[{"body": body, "created_at": _ts(_days(day))} for day, body in messages],
        assurances=list(assurances),
        history=history,
    )


def _requests(world: _World) -> None:
    market = "Shelling of the covered market of Marrovel on 12 June 2023."
    detention = "Detention and ill-treatment of civilians at the primary school of Ostrik."
    _rfa(
        world,
        "RFA-2026-0003",
        "NWU-NL",
        "NWU/2026/007",
        [_step("draft", -2)],
        theme="checkpoint",
        summary="Events at checkpoint 7 on the Brenna Vale road in September 2023.",
        sought="Statements and medical records concerning events at checkpoint 7.",
    )
    _rfa(
        world,
        "RFA-2025-0041",
        "NWU-NL",
        "NWU/2025/112",
        [
            _step("draft", -46),
            _step("submitted", -44),
            _step("in_review", -42, "Assigned for triage."),
        ],
        theme="detention",
        summary=detention,
        sought="All statements, documents, photographs and recordings concerning the Ostrik "
        "school and the disappearances connected with it.",
        items=[
            "ITM-0001",
            "ITM-0003",
            "ITM-0005",
            "ITM-0006",
            "ITM-0012",
            "ITM-0013",
            "ITM-0021",
            "ITM-0025",
            "ITM-0029",
            "ITM-0031",
            "ITM-0032",
            "ITM-0033",
        ],
        urgency="urgent",
        urgency_justification="A suspect is due to leave Northland at the end of the month.",
        deadline=(DEMO_EPOCH + timedelta(days=30)).date(),
    )
    _rfa(
        world,
        "RFA-2025-0038",
        "NWU-NL",
        "NWU/2025/098",
        [
            _step("draft", -70),
            _step("submitted", -69),
            _step("in_review", -66),
            _step("approved", -50, "Approved by the legal office; package to be assembled."),
        ],
        theme="market",
        summary=market,
        sought="The Mission's situation reports and photographs of the market.",
        items=["ITM-0015", "ITM-0016", "ITM-0024", "ITM-0026"],
    )
    _rfa(
        world,
        "RFA-2025-0027",
        "NWU-NL",
        "NWU/2025/064",
        [
            _step("draft", -150),
            _step("submitted", -149),
            _step("withdrawn", -140, "Withdrawn by the requester: duplicate of NWU/2025/098."),
        ],
        theme="market",
        summary=market,
        sought="Statements concerning the market attack.",
    )
    _rfa(
        world,
        "RFA-2025-0044",
        "SPR-ES",
        "SPR-INT-2025-311",
        [_step("draft", -24), _step("submitted", -21), _step("in_review", -18)],
        theme="detention",
        summary=detention,
        sought="Statements and recordings of former detainees.",
        items=["ITM-0001", "ITM-0002", "ITM-0024", "ITM-0031"],
    )
    _rfa(
        world,
        "RFA-2026-0001",
        "SPR-ES",
        "SPR-INT-2026-004",
        [_step("draft", -4), _step("submitted", -3)],
        theme="market",
        summary=market,
        sought="Analytical reports on attacks on markets.",
    )
    _rfa(
        world,
        "RFA-2025-0039",
        "ECT-EV",
        "ECT/INV/2025/77",
        [
            _step("draft", -40),
            _step("submitted", -38),
            _step("in_review", -35),
            _step("clarification_requested", -33, "Period and persons concerned unclear."),
        ],
        theme="detention",
        summary="Disappearances in Kallavar district in August and September 2023.",
        sought="Statements of relatives of disappeared persons and hospital records.",
        items=["ITM-0003", "ITM-0007", "ITM-0011", "ITM-0013", "ITM-0021"],
        messages=[
            (
                -33,
                "Legal office of the Mechanism: please confirm whether the request covers "
                "only persons taken in Kallavar district, or also those later seen at Ostrik.",
            ),
            (
                -31,
                "Eastvale Criminal Tribunal: we are confirming with the investigating judge "
                "and will reply shortly.",
            ),
        ],
    )
    _rfa(
        world,
        "RFA-2025-0031",
        "WJD-WR",
        "WJD-2025-0456",
        [
            _step("draft", -60),
            _step("submitted", -58),
            _step("in_review", -55),
            _step(
                "declined",
                -10,
                "Declined: the fair-trial assessment of the authority has expired; a new "
                "assessment is needed before material can be shared.",
            ),
        ],
        theme="market",
        summary=market,
        sought="The Mission's situation report of 12 June 2023.",
        items=["ITM-0015"],
    )
    _rfa(
        world,
        "RFA-2025-0046",
        "RCP-RV",
        "RCP/2025/1290",
        [_step("draft", -30), _step("submitted", -29), _step("in_review", -27)],
        theme="detention",
        summary=detention,
        sought="The order on the use of the school, photographs and statements of detainees.",
        items=["ITM-0002", "ITM-0014", "ITM-0022", "ITM-0028"],
        assurances=[
            {
                "given_by": "Chief Prosecutor, Riverton Court Prosecutors (fictional)",
                "given_at": (DEMO_EPOCH - timedelta(days=28)).date().isoformat(),
                "text": "The Riverton Court Prosecutors assure the Mechanism that the death "
                "penalty will not be sought, imposed or carried out in any proceedings in "
                "which material provided in response to request RCP/2025/1290 is used.",
            }
        ],
    )


def _families_requests(world: _World) -> None:
    """Two requests in review whose only candidates are the families' network's items; the
    demo asks the network's consent for them after the import (``consent_asked_for``)."""
    disappearances = "Disappearances in Kallavar district in August 2023."
    eastvale, riverton = FAMILIES_REQUESTS
    _rfa(
        world,
        eastvale,
        "ECT-EV",
        "ECT/INV/2025/81",
        [_step("draft", -20), _step("submitted", -19), _step("in_review", -17)],
        theme="detention",
        summary=disappearances,
        sought="Registers of persons reported missing kept by families' associations.",
        items=["ITM-0035"],
    )
    _rfa(
        world,
        riverton,
        "RCP-RV",
        "RCP/2025/1311",
        [_step("draft", -16), _step("submitted", -15), _step("in_review", -14)],
        theme="detention",
        summary=disappearances,
        sought="Accounts of relatives who searched detention sites.",
        items=["ITM-0036"],
    )
    world.data.consent_asked_for.extend(FAMILIES_REQUESTS)


def build_dataset(keys_dir: Path) -> Dataset:
    """The whole demo world: bundle records in dependency order and their files."""
    fingerprints = _example_fingerprints(keys_dir)
    world = _World()
    _organisations(world, keys_dir, fingerprints)
    _identifiers(world)
    _statements(world)
    _documents(world)
    _photos(world)
    _scans(world)
    _reports(world)
    _unredactable(world)
    _families(world)
    _consents(world)
    _requests(world)
    _families_requests(world)
    return _ordered(world.data)


def _example_fingerprints(keys_dir: Path) -> dict[str, str]:
    """The pinned fingerprints of the example keys, checked to cover every demo authority."""
    path = keys_dir / "fingerprints.json"
    try:
        fingerprints = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read the example key fingerprints {path}: {exc}") from None
    for code in AUTHORITY_CODES:
        if not isinstance(fingerprints, dict) or not isinstance(fingerprints.get(code), str):
            raise DatasetError(f"{path} has no fingerprint for {code}")
        if not (keys_dir / f"{code}.pub.asc").is_file():
            raise DatasetError(f"the example key {code}.pub.asc is missing from {keys_dir}")
    return {code: fingerprints[code] for code in AUTHORITY_CODES}


_ORDER = (
    "provider",
    "authority",
    "person",
    "protected_identifier",
    "assessment",
    "recipient_key",
    "item",
    "redaction_mark",
    "consent",
    "rfa",
)


def _ordered(data: Dataset) -> Dataset:
    """Records grouped by type, referenced types first (stable within a type)."""
    data.records.sort(key=lambda record: _ORDER.index(record["type"]))
    return data
