"""The class vocabularies shared by every part of specmorph: 8-class taxonomy, Galaxy10, CALIFA types."""

# The 8-class Galaxy10-style taxonomy, in this (alphabetical) order everywhere: label index i
# means CLASSES[i] in catalogues, HDF5 products, checkpoints and predictions.
CLASSES: tuple[str, ...] = (
    "barred_spiral",
    "cigar_smooth",
    "edge_on_with_bulge",
    "edge_on_without_bulge",
    "in_between_smooth",
    "round_smooth",
    "unbarred_loose_spiral",
    "unbarred_tight_spiral",
)
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}

# Galaxy10 DECaLS `ans` codes 0-9, in the real file's order (Leung & Bovy 2019).
GALAXY10_CLASSES: tuple[str, ...] = (
    "disturbed",
    "merging",
    "round_smooth",
    "in_between_smooth",
    "cigar_smooth",
    "barred_spiral",
    "unbarred_tight_spiral",
    "unbarred_loose_spiral",
    "edge_on_without_bulge",
    "edge_on_with_bulge",
)

# CALIFA Hubble types, in the order of the CALIFA DR3 integer `hubtyp` code (0..19; -1 unknown).
CALIFA_TYPES: tuple[str, ...] = (
    "E0", "E1", "E2", "E3", "E4", "E5", "E6", "E7",
    "S0", "S0a", "Sa", "Sab", "Sb", "Sbc", "Sc", "Scd", "Sd", "Sdm",
    "I", "BCD",
)
