"""empiricist.experiments: one folder per experiment a study can run and decide (docs/design.md, "Experiments").

Each subpackage registers itself into ``empiricist.studies.experiment`` when imported; nothing here
imports them, so adding an experiment never touches this file.
"""
