"""PitVis label codes and names, exactly as the PitVis-2023 annotations use them.

Steps are 1..14 with -1 for out of patient. Instruments are 1..18, with 0 for "inside the
patient, no instrument visible", -1 for out of patient and -2 for an unused second slot.

Models index classes from 0; the helpers here are the one place that maps between model
class indices and PitVis codes.
"""

OUT_OF_PATIENT = -1
NO_INSTRUMENT = 0
UNUSED_SLOT = -2

STEPS: dict[int, str] = {
    1: "nasal_corridor_creation",
    2: "anterior_sphenoidotomy",
    3: "septum_displacement",
    4: "sphenoid_sinus_clearance",
    5: "sellotomy",
    6: "haemostasis",
    7: "synthetic_graft_placement",
    8: "durotomy",
    9: "tumour_excision",
    10: "fat_graft_placement",
    11: "gasket_seal_construct",
    12: "dural_sealant",
    13: "nasal_packing",
    14: "debris_clearance",
}

INSTRUMENTS: dict[int, str] = {
    1: "bipolar_forceps",
    2: "cottle",
    3: "cup_forceps",
    4: "dural_scissors",
    5: "freer_elevator",
    6: "haemostatic_foam",
    7: "irrigation_syringe",
    8: "kerrisons",
    9: "micro_doppler",
    10: "nasal_cutting_forceps",
    11: "pituitary_rongeurs",
    12: "retractable_knife",
    13: "ring_curette",
    14: "spatula_dissector",
    15: "stealth_pointer",
    16: "suction",
    17: "surgical_drill",
    18: "tissue_glue",
}

ANATOMY: dict[int, str] = {
    101: "sella",
}
"""Anatomy the segmenter learns, by segmentation code: above 100 so it never meets an instrument
code (the phantom's ``anatomy/`` masks hold these codes)."""

SEGMENTATION_CLASSES: dict[int, str] = {**INSTRUMENTS, **ANATOMY}
"""Every class a segmentation mask can name: instruments 1..18 by PitVis code, then anatomy."""

STEP_CODES: tuple[int, ...] = (OUT_OF_PATIENT, *STEPS)
"""Every valid step code, in model class order: class 0 is out of patient, class k is step k."""

INSTRUMENT_CODES: tuple[int, ...] = (NO_INSTRUMENT, *INSTRUMENTS)
"""Instrument codes in model class order: class 0 is "none visible", class k is instrument k."""

INSTRUMENT_SLOT_CODES: frozenset[int] = frozenset(
    (OUT_OF_PATIENT, UNUSED_SLOT, NO_INSTRUMENT, *INSTRUMENTS)
)
"""Every code an ``int_instrumentN`` column may hold."""

NUM_STEP_CLASSES = len(STEP_CODES)
NUM_INSTRUMENT_CLASSES = len(INSTRUMENT_CODES)


def step_name(code: int) -> str:
    """Human-readable name of a step code, including out of patient."""
    if code == OUT_OF_PATIENT:
        return "out_of_patient"
    return STEPS[code]


def instrument_name(code: int) -> str:
    """Human-readable name of an instrument slot code."""
    special = {
        OUT_OF_PATIENT: "out_of_patient",
        NO_INSTRUMENT: "no_visible_instrument",
        UNUSED_SLOT: "no_secondary_instrument",
    }
    return special.get(code) or INSTRUMENTS[code]


def step_code_to_class(code: int) -> int:
    """Model class index of a step code (out of patient -> 0, step k -> k)."""
    return 0 if code == OUT_OF_PATIENT else code


def step_class_to_code(index: int) -> int:
    """PitVis step code of a model class index."""
    return STEP_CODES[index]
