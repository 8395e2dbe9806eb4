"""AutoBuild: which modules make a network accurate or fast on a device, and networks built from them.

``sequences`` turns a space's networks into layer-sequence graphs and back; ``labels`` reads objectives
(an accuracy table, a store's measurements, a file's column); ``equations`` combines them into targets;
``training`` fits one predictor per target; ``building`` scores modules and assembles networks; ``explain``
writes the tables and plots.
"""
