"""The ground truth of one mock galaxy: every physical parameter the renderers draw from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class GalaxyTruth:
    """One mock galaxy. Angles in degrees, sizes in arcsec, velocities in km/s.

    The image renderer (`sky.render`), the cube builder (`sky.cube`) and the catalogue writers
    (`sky.votes`, `sky.catalogs`) all read the same instance, so the RGB image, the spectra and
    the Galaxy Zoo votes of a galaxy describe one object.
    """

    id_str: str  # CALIFA-like name ("MOCK0042") or GZ2 dr7objid as a string
    ra: float  # deg, J2000
    dec: float  # deg, J2000
    redshift: float
    label: int  # index into taxonomy.CLASSES (the 8-class truth)
    galaxy10: int  # Galaxy10 `ans` code (0-9); 0/1 (disturbed/merging) only in Galaxy10 mocks
    hubtyp: str  # CALIFA Hubble type string, one of taxonomy.CALIFA_TYPES

    # Photometry and structure (observed frame).
    mag_r: float  # total r-band AB magnitude
    bulge_frac: float  # bulge-to-total light ratio in r (1 for ellipticals)
    bulge_n: float  # Sérsic index of the bulge / spheroid
    bulge_re: float  # arcsec, effective radius of the bulge
    bulge_q: float  # projected axis ratio of the bulge
    disc_h: float  # arcsec, exponential scale length of the disc (0 if no disc)
    disc_q: float  # projected axis ratio of the disc (cos i, floored by thickness)
    inclination: float  # deg, 0 = face-on, 90 = edge-on
    pa: float  # deg, position angle of the major axis, east of north
    bar_strength: float  # 0..1 fraction of disc light in the bar (0 = unbarred)
    bar_length: float  # arcsec, bar semi-major axis
    n_arms: int  # 0 for no spiral structure
    pitch: float  # deg, logarithmic-spiral pitch angle (small = tight)
    arm_strength: float  # 0..1 arm contrast
    dust_lane: float  # 0..1 mid-plane dust lane opacity (edge-on discs)

    # Stellar populations and gas.
    bulge_gr: float  # g-r colour of the bulge (mag)
    disc_gr: float  # g-r colour of the disc (mag)
    age_bulge: float  # Gyr, light-weighted age of the bulge population
    age_disc: float  # Gyr, light-weighted age of the disc population
    ew_ha: float  # Å, Hα emission equivalent width of the disc (0 = no star formation)
    log_nii_ha: float  # log10 [NII]6584/Hα
    log_oiii_hb: float  # log10 [OIII]5007/Hβ
    av: float  # mag, V-band dust attenuation of the disc
    # Kinematics.
    v_rot: float  # km/s, asymptotic circular velocity of the disc (0 for ellipticals)
    sigma: float  # km/s, central stellar velocity dispersion
    # Calibration "joint" columns (`population.joint_draw`) the real galaxy this one copies has no value for
    # (Pipe3D measured none), ";"-separated; the mock drew each alone from its type's quantiles.
    unmeasured: str = ""

    @classmethod
    def field_names(cls) -> list[str]:
        """Returns the column names of a truth table, in declaration order."""
        return [f.name for f in fields(cls)]

    def to_row(self) -> dict:
        """Returns the truth as a flat dict, one truth-table row."""
        return asdict(self)
