"""Short narrations of phantom clips and case titles, for video-text models.

Each 10-second clip gets one or two sentences that name what the clip's labels say: the step
(or that the endoscope is out of the patient) and the instruments in view. Wording varies with
the seed, so models cannot learn one fixed sentence per step.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from orstream.labels import OUT_OF_PATIENT

CLIP_S = 10
"""Length of a narrated clip, in seconds."""

INSTRUMENT_WORDS: dict[int, str] = {
    1: "bipolar forceps",
    2: "Cottle elevator",
    3: "cup forceps",
    4: "dural scissors",
    5: "Freer elevator",
    6: "haemostatic foam",
    7: "irrigation syringe",
    8: "Kerrison rongeur",
    9: "micro-Doppler probe",
    10: "nasal cutting forceps",
    11: "pituitary rongeur",
    12: "retractable knife",
    13: "ring curette",
    14: "spatula dissector",
    15: "navigation pointer",
    16: "suction",
    17: "high-speed drill",
    18: "tissue glue applicator",
}

STEP_SENTENCES: dict[int, tuple[str, ...]] = {
    OUT_OF_PATIENT: (
        "The endoscope is out of the patient; the operating room is in view.",
        "The scope has been withdrawn from the nose.",
        "Outside the patient, the endoscope is being cleaned and repositioned.",
    ),
    1: (
        "The nasal corridor is opened past the turbinates.",
        "The surgeon works along the nasal cavity, lateralising the turbinate.",
        "Creating the nasal corridor between septum and turbinates.",
    ),
    2: (
        "The anterior wall of the sphenoid is opened.",
        "Bone of the sphenoid face is removed around the ostium.",
        "Anterior sphenoidotomy: the sphenoid ostia are widened.",
    ),
    3: (
        "The posterior septum is displaced to the side.",
        "The septal cartilage is pushed across to widen the approach.",
        "Septum displacement opens a binostril corridor.",
    ),
    4: (
        "The sphenoid sinus is cleared of mucosa and septations.",
        "Sinus mucosa and bony septa are removed inside the sphenoid.",
        "Clearing the sphenoid sinus to expose the sellar floor.",
    ),
    5: (
        "The bony sellar floor is opened.",
        "Sellotomy: bone over the sella is thinned and removed, exposing the dura.",
        "The sella is opened with drill and rongeur.",
    ),
    6: (
        "Bleeding is controlled.",
        "Haemostasis: the bleeding points are coagulated and packed.",
        "The field is cleared of blood and bleeding is stopped.",
    ),
    7: (
        "A synthetic dural graft is laid over the defect.",
        "The white synthetic graft sheet is placed and positioned.",
        "Synthetic graft placement covers the sellar opening.",
    ),
    8: (
        "The dura is incised.",
        "Durotomy: the bluish dura is opened with a blade.",
        "The dura over the sella is cut to reach the tumour.",
    ),
    9: (
        "The tumour is removed piece by piece.",
        "Tumour excision: soft yellowish adenoma is curetted and suctioned.",
        "The pituitary adenoma is debulked from the sella.",
    ),
    10: (
        "A fat graft is placed into the sella.",
        "Yellow fat lobules are packed into the defect.",
        "Fat graft placement fills the tumour cavity.",
    ),
    11: (
        "A rigid gasket seal is inset over the graft.",
        "The gasket plate is wedged into the bony opening.",
        "Building the gasket seal over the sellar defect.",
    ),
    12: (
        "Dural sealant is applied over the repair.",
        "A glossy layer of sealant is spread over the reconstruction.",
        "The repair is covered with tissue sealant.",
    ),
    13: (
        "The nose is packed.",
        "White nasal packing is placed along the corridor.",
        "Nasal packing is inserted at the end of the operation.",
    ),
    14: (
        "Debris and clots are cleared from the nasal cavity.",
        "The nasal cavity is irrigated and suctioned clean.",
        "Clearing blood clots and debris before closing.",
    ),
}

TITLES = (
    "Endoscopic transsphenoidal resection of a pituitary adenoma (phantom case {video:02d})",
    "Endoscopic endonasal pituitary surgery, phantom case {video:02d}",
    "Transsphenoidal endoscopic tumour excision with sellar reconstruction (case {video:02d})",
)


def _instrument_phrase(codes: list[int]) -> str:
    names = [INSTRUMENT_WORDS[c] for c in codes]
    if not names:
        return ""
    if len(names) == 1:
        return f" Instrument in view: the {names[0]}."
    return f" Instruments in view: the {names[0]} and the {names[1]}."


def narrate_clip(rng: np.random.Generator, steps: np.ndarray, instruments: np.ndarray) -> str:
    """One narration for a clip, from its per-second step codes and instrument slots."""
    order: list[int] = []
    for code in steps.tolist():
        if not order or order[-1] != code:
            order.append(code)
    seen = list(dict.fromkeys(order))
    sentences = [STEP_SENTENCES[c][int(rng.integers(len(STEP_SENTENCES[c])))] for c in seen[:2]]
    text = sentences[0]
    if len(sentences) > 1:
        text += f" Then {sentences[1][0].lower()}{sentences[1][1:]}"
    counts = Counter(int(c) for c in instruments.ravel() if c > 0)
    return text + _instrument_phrase([c for c, _ in counts.most_common(2)])


def narrate_case(
    rng: np.random.Generator, steps: np.ndarray, instruments: np.ndarray
) -> list[tuple[int, int, str]]:
    """(start, end, text) for each 10-second clip of a case's per-second labels."""
    out = []
    for start in range(0, len(steps), CLIP_S):
        end = min(len(steps), start + CLIP_S)
        out.append((start, end, narrate_clip(rng, steps[start:end], instruments[start:end])))
    return out


def case_title(rng: np.random.Generator, video: int) -> str:
    """A title for case ``video``."""
    return TITLES[int(rng.integers(len(TITLES)))].format(video=video)
