"""Benchmarks: how fast trmlab runs on this machine, against its matmul limit and a peer.

* :mod:`.speed`: ``trmlab bench``: training and inference speed of the CPU presets and the reference shapes
  (fp32 and bf16, eager and compiled), each figure also a fraction of this machine's matmul limit and a
  ratio to the peer; writes ``bench/results/<machine kind>.json``;
* :mod:`.peer`: the peer (lucidrains' tiny-recursive-model), timed in its own process;
* :mod:`.eval_batch`, :mod:`.data_build`, :mod:`.viz_redraw`: one-off measurements behind documented
  defaults (evaluation batch on a CPU, full-size data builds, redraw time of the recursion views), each
  ``python -m trmlab.bench.NAME``.

The code is here; what it measured is data and stays beside the repository's docs in ``bench/``
(``bench/results/*.json``, ``bench/data_build.json``), where ``trmlab bench`` writes by default.
"""
