"""The user's dataset, checked before anything is written to ``--out``.

A problem llmaug cannot resolve for the user is one ``DatasetError`` line; rows it can safely leave
out are skipped and counted, and the run says so. The cases and the choice made for each are in
docs/BAD-INPUTS.md.
"""
