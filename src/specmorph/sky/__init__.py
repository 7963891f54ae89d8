"""The mock survey: galaxies rendered into the real archives' file formats, with known ground truth.

`generate_survey` (in `survey`) writes eCALIFA V500 cubes and a morphology table, SDSS-like RGB
cutouts with an index, a Galaxy Zoo 2 catalogue (Hart et al. 2016 columns) with Kaggle-style images
and a Galaxy10 DECaLS HDF5 file. Later stages read them through the same readers as real data.

Pieces, in the order a galaxy passes through them:
    population  draws a `GalaxyTruth` from its CALIFA type or its 8-class label, with distributions
                summarised from the real eCALIFA/NSA/Pipe3D tables (`calibration.json`,
                written by tools/calibrate_sky.py; the real tables are not read at run time);
    samples     the three samples: CALIFA (real type mix), GZ2 (CALIFA galaxies inside a footprint
                plus magnitude-limited field galaxies), Galaxy10 (real class mix, partly the same
                galaxies as GZ2, so grouping by galaxy matters);
    render      noiseless g, r, i light: Sérsic bulge, exponential disc, bar, spiral arms, dust lane;
    observe     PSF, sky, Poisson noise, field stars and neighbours, the SDSS asinh colour JPEG;
    spectra     rest-frame stellar populations, emission lines and dust attenuation;
    cube        the spaxel-resolved cube (light profiles × spectra, velocity field, seeing, noise);
    votes       volunteer votes and the gz2_class string; catalogs: the table and HDF5 writers.

Correlations modelled, and why (each is a real-sky trend that a classifier could learn):
    * Type sets structure: bulge-to-total falls from S0 (~0.55) to Sdm (~0); spiral pitch angle
      grows from early (Sa ~10°) to late types (Sc-Sd ~25°), so "tight" vs "loose" follows type;
      bars occur with the real CALIFA bar fractions per type (A/AB/B).
    * Type sets the stellar population: ellipticals and bulges are old (strong 4000 Å break,
      Mg b, Na D; g-r ≈ 0.75-0.8), discs of late types are young and blue with Hα equivalent
      widths from the eCALIFA table per type; ellipticals have weak LINER-like emission (high
      [NII]/Hα). Bulges are red and discs blue in the images for the same reason.
    * Discs rotate (v_rot from a Tully-Fisher relation on the type's stellar mass), ellipticals
      are dispersion-dominated (σ from the type's central dispersion): a cigar-shaped elliptical and
      an edge-on bulgeless disc look alike in RGB (a thin elongated streak) but differ in the cube
      by rotation, emission lines and age; a face-on S0 and a round elliptical look alike in RGB
      but the S0 rotates. This is the information the cubes carry that images do not.
    * Edge-on discs carry dust: higher A_V (redder, attenuated continuum) and a dust lane in the
      image.
    * Distance sets what volunteers see: faint, small, high-redshift galaxies look smoother to GZ2
      volunteers (the bias that the `_debiased` fractions correct).
"""
