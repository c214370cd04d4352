"""``llmaug report``: judge an augmentation before training on it.

A finished run directory is read back (``run``), its answers are scored against the users'
held-out interactions and summarised (``figures``), and one self-contained HTML page plus a JSON
of the same figures is written (``page``). Held-out interactions are only ever read here, to
evaluate; nothing in this package writes into the run.
"""
