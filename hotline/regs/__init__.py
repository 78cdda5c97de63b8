"""The register map's source (``hotline.rdl``) and its generator.

The generated Python view is :mod:`hotline.regmap`; regenerate everything with
``python -m hotline.regs.generate`` after editing the RDL file.
"""
