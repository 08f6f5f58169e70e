"""The article's remaining claims, measured: the limits of §5, zero-shot on unseen tasks (§1), and
one model per task against one model for many (§2). Each study trains small SFT runs from a base
model and measures them; ``run.run_limits`` runs them over seeds and aggregates mean, range and a
95% interval (``minift.seeds``); ``minift limits`` (``minift.commands.limits``) is its command.

* ``hallucination`` — confident where it knows nothing? Calibration (ECE, reliability) on
  answerable and unanswerable questions, before and after adding "I don't know" answers to the SFT data.
* ``bias``          — a known annotator skew on ambiguous reviews: does the model amplify, copy or
  dampen it, greedy and sampled, at which training length?
* ``data_cost``     — held-out exact match against the number of SFT examples, and against the
  number of wordings at a fixed number of examples (quantity vs diversity).
* ``zero_shot``     — held-out-*family* accuracy against the number of trained families of the
  compositional space (FLAN), beside the trained families' own accuracy and trivial baselines,
  with how often the model answers as a trained family one primitive away.
* ``single_task``   — traditional fine-tuning (one task) against instruction tuning (§2).

The data of every study is built by ``minift.course.studies``.
"""
