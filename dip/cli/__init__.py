"""The public face: the ``dip`` command (:mod:`~dip.cli.main`), a folder of images
(:mod:`~dip.cli.folder`) and :func:`dip.restore` for scripts (:mod:`~dip.cli.api`).

The top of the house: may import every layer.
"""
