"""The model zoo: trained models shipped with trmlab (``zoo/<name>/``), how each is made, and writing one.

* :mod:`.store`: find a model by name, read its card, weights and check set (``trmlab zoo list|path``);
* :mod:`.recipes`: how each model is made (dataset, preset, overrides, budget), its data built and checked;
* :mod:`.training`: ``trmlab zoo train NAME``, reproducing a model from its card;
* :mod:`.export`: ``trmlab zoo export RUN NAME``, writing a trained run into the zoo.

Which run a name means (a folder wins over a zoo name, ``zoo:NAME`` never does) is decided once, by
:func:`trmlab.runs.resolve_run`.
"""
