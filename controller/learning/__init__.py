"""What the controller learns from its measurements: the bridge between spaces/records and ``predictors``
(training samples from a space or a table, predictor jobs on a dataset, per-layer latency, plots)."""
